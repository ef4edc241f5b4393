//! The camera task against scripted streams (the [`Opener`] seam): reconnect with backoff,
//! the watchdog, the `onDemand` policy and stopping, without an RTSP server. The frames are
//! real H.264 (OpenH264's encoder), so what is decoded is checked by the decoder itself.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::decode_worker::VideoCodec;
use super::session::{Opened, StreamParams, VideoFrame, VideoStream};
use super::*;
use crate::status::StreamInfo;

/// One attempt to open the stream.
enum Attempt {
    /// Opening fails with this kind (a refused connection, a 401 …).
    Fail(ErrorKind),
    /// The stream opens and yields these items.
    Play(Vec<Item>),
}

enum Item {
    /// The GOP's frame with this index.
    Frame(usize),
    /// That frame, after this many RTP packets were lost.
    Lossy(usize, u64),
    /// retina reported an error reading the stream (a packet it could not depacketize).
    Damaged,
    /// Such errors from now on, every 20 ms, and no video.
    DamagedForever,
    /// The camera ends the stream.
    End,
    /// Nothing ever arrives again, though the session stays open.
    Silence,
    /// From now on only RTCP (a sender report every 20 ms), no video: a camera whose
    /// encoder stopped while its RTP stack goes on.
    RtcpForever,
}

/// The attempts a camera will meet, in order; once they run out, every open fails.
struct Script {
    attempts: Mutex<VecDeque<Attempt>>,
    /// When each open was asked for.
    opens: Mutex<Vec<Instant>>,
    gop: Arc<Vec<Vec<u8>>>,
}

struct ScriptedOpener(Arc<Script>);

impl Opener for ScriptedOpener {
    fn open(&self) -> BoxFuture<'_, Result<Opened>> {
        Box::pin(async move {
            self.0.opens.lock().push(Instant::now());
            let next = self.0.attempts.lock().pop_front();
            match next {
                Some(Attempt::Play(items)) => Ok(Opened {
                    stream: Box::new(ScriptedStream {
                        items: items.into(),
                        gop: self.0.gop.clone(),
                    }),
                    codec: VideoCodec::H264,
                    params: StreamParams {
                        info: StreamInfo {
                            codec: Some("h264".into()),
                            ..Default::default()
                        },
                        full_range: true,
                    },
                }),
                Some(Attempt::Fail(kind)) => Err(Error::new(kind, "scripted failure")),
                None => Err(Error::new(ErrorKind::Unreachable, "script ended")),
            }
        })
    }
}

struct ScriptedStream {
    items: VecDeque<Item>,
    gop: Arc<Vec<Vec<u8>>>,
}

impl VideoStream for ScriptedStream {
    fn next_item(&mut self) -> BoxFuture<'_, Option<Result<StreamItem>>> {
        Box::pin(async move {
            let frame = |i: usize, loss| {
                Some(Ok(StreamItem::Video(VideoFrame {
                    data: bytes::Bytes::from(self.gop[i].clone()),
                    keyframe: i == 0,
                    loss,
                    new_params: None,
                    rtp_timestamp: i as i64 * 6000,
                    clock_rate: 90_000,
                })))
            };
            let damaged = || {
                Some(Ok(StreamItem::Damaged(Error::new(
                    ErrorKind::Protocol,
                    "scripted depacketization error",
                ))))
            };
            if let Some(Item::DamagedForever) = self.items.front() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return damaged();
            }
            if let Some(Item::RtcpForever) = self.items.front() {
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Some(Ok(StreamItem::Other));
            }
            match self.items.pop_front() {
                Some(Item::Frame(i)) => frame(i, 0),
                Some(Item::Lossy(i, loss)) => frame(i, loss),
                Some(Item::Damaged) => damaged(),
                Some(Item::End) => None,
                Some(Item::Silence)
                | Some(Item::DamagedForever)
                | Some(Item::RtcpForever)
                | None => futures::future::pending().await,
            }
        })
    }
}

/// One GOP of 128×96 H.264 (Annex B access units, parameter sets before the keyframe).
fn gop(frames: usize) -> Vec<Vec<u8>> {
    use openh264::encoder::{Encoder, EncoderConfig, IntraFramePeriod};
    use openh264::formats::YUVBuffer;
    let (w, h) = (128usize, 96usize);
    let cfg = EncoderConfig::new().intra_frame_period(IntraFramePeriod::from_num_frames(1000));
    let mut enc =
        Encoder::with_api_config(openh264::OpenH264API::from_source(), cfg).expect("encoder");
    (0..frames)
        .map(|n| {
            let mut yuv = vec![128u8; w * h * 3 / 2];
            for (i, s) in yuv[..w * h].iter_mut().enumerate() {
                *s = ((i % w + n * 4) % 256) as u8;
            }
            let buf = YUVBuffer::from_vec(yuv, w, h);
            enc.encode(&buf).expect("encode").to_vec()
        })
        .collect()
}

fn script(attempts: Vec<Attempt>, frames: usize) -> Arc<Script> {
    Arc::new(Script {
        attempts: Mutex::new(attempts.into()),
        opens: Mutex::new(Vec::new()),
        gop: Arc::new(gop(frames)),
    })
}

fn config(f: impl FnOnce(&mut CameraConfig)) -> CameraConfig {
    let mut c = CameraConfig::from_url("scripted", "rtsp://127.0.0.1/scripted");
    f(&mut c);
    c
}

fn start(
    config: CameraConfig,
    script: &Arc<Script>,
) -> (Arc<Camera>, oneshot::Receiver<Result<()>>) {
    let origin = Origin {
        url: "rtsp://127.0.0.1:554/scripted".into(),
        endpoint: "rtsp://127.0.0.1:554/scripted".into(),
        decoder: DecoderBackend::OpenH264,
        opener: Box::new(ScriptedOpener(script.clone())),
    };
    let (events, _) = broadcast::channel(16);
    Camera::start_with(
        config,
        origin,
        Default::default(),
        events,
        &tokio::runtime::Handle::current(),
    )
    .expect("camera starts")
}

/// Waits (up to 5 s) until `f` holds.
async fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A camera that refuses connections twice, then streams: a persistent camera retries
/// after a growing delay (backoff doubling from `backoff_initial`, jitter 50–100 %) and
/// streams on the third attempt, counting two reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_failures_with_backoff() {
    let s = script(
        vec![
            Attempt::Fail(ErrorKind::Unreachable),
            Attempt::Fail(ErrorKind::Unreachable),
            Attempt::Play(vec![Item::Frame(0), Item::Silence]),
        ],
        1,
    );
    let (cam, first) = start(
        config(|c| {
            c.persistent = true;
            c.backoff_initial = Duration::from_millis(100);
            c.backoff_max = Duration::from_secs(5);
        }),
        &s,
    );
    first.await.unwrap().unwrap();
    until("streaming", || cam.status.state() == CameraState::Streaming).await;
    let opens = s.opens.lock().clone();
    assert_eq!(opens.len(), 3);
    assert!(opens[1] - opens[0] >= Duration::from_millis(50));
    assert!(opens[2] - opens[1] >= Duration::from_millis(100));
    let st = cam.status.snapshot();
    assert_eq!(st.reconnects, 2);
    assert_eq!(st.last_error.unwrap().kind, ErrorKind::Unreachable);
    cam.stop();
}

/// A camera that streams one frame, then `after`: the watchdog must end the session after
/// `frame_timeout` with a `Timeout`, and the camera opens the stream again and streams.
async fn watchdog_reopens_after(after: Item) {
    let s = script(
        vec![
            Attempt::Play(vec![Item::Frame(0), after]),
            Attempt::Play(vec![Item::Frame(0), Item::Silence]),
        ],
        1,
    );
    let (cam, first) = start(
        config(|c| {
            c.frame_timeout = Duration::from_millis(300);
            c.backoff_initial = Duration::from_millis(20);
        }),
        &s,
    );
    first.await.unwrap().unwrap();
    until("reopened", || s.opens.lock().len() == 2).await;
    let opens = s.opens.lock().clone();
    assert!(opens[1] - opens[0] >= Duration::from_millis(300));
    let e = cam.status.last_error().expect("the watchdog's error");
    assert_eq!(e.kind, ErrorKind::Timeout);
    until("streaming again", || {
        cam.status.state() == CameraState::Streaming
    })
    .await;
    assert_eq!(cam.status.snapshot().reconnects, 1);
    cam.stop();
}

/// A camera that keeps the session open but stops sending anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_fires_on_silence() {
    watchdog_reopens_after(Item::Silence).await;
}

/// A camera whose encoder stopped but whose RTP stack still sends sender reports: the
/// watchdog counts from the last video frame, so RTCP does not keep the session open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_fires_when_only_rtcp_arrives() {
    watchdog_reopens_after(Item::RtcpForever).await;
}

/// `onDemand` with nobody looking: frames are received and buffered but not decoded
/// (only the first keyframe, for connect's first picture); a snapshot decodes the buffered
/// GOP up to its newest frame: all of it, as the idle camera released its decoder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_decodes_nothing_while_idle() {
    const FRAMES: usize = 12;
    let mut items: Vec<Item> = (0..FRAMES).map(Item::Frame).collect();
    items.push(Item::Silence);
    let s = script(vec![Attempt::Play(items)], FRAMES);
    let (cam, first) = start(config(|c| c.decode = DecodePolicy::OnDemand), &s);
    first.await.unwrap().unwrap();
    let received = || cam.status.frames_received.load(Ordering::Relaxed);
    until("every frame received", || received() == FRAMES as u64).await;
    // Time for a decode that should not happen.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let st = cam.status.snapshot();
    assert_eq!((st.frames_decoded, st.frames_dropped), (1, 0));
    assert_eq!(cam.cache.latest().map(|p| p.seq), Some(1));
    let f = cam.snapshot(SnapshotOptions::full()).await.unwrap();
    assert_eq!((f.width, f.height, f.seq), (128, 96, 2));
    assert_eq!(cam.status.snapshot().frames_decoded, 1 + FRAMES as u64);
    cam.stop();
}

/// Stopping a camera that waits out a long backoff ends it at once: no further attempt,
/// state `stopped`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_during_backoff_ends_at_once() {
    let s = script(vec![Attempt::Fail(ErrorKind::Unreachable)], 1);
    let (cam, first) = start(
        config(|c| {
            c.persistent = true;
            c.backoff_initial = Duration::from_secs(30);
            c.backoff_max = Duration::from_secs(30);
        }),
        &s,
    );
    first.await.unwrap().unwrap();
    until("reconnecting", || {
        cam.status.state() == CameraState::Reconnecting
    })
    .await;
    cam.stop();
    // Well inside the 15–30 s backoff.
    until("stopped", || cam.status.state() == CameraState::Stopped).await;
    assert_eq!(s.opens.lock().len(), 1);
}

/// Depacketization errors in the middle of a stream (a frame whose start never arrived)
/// and lost packets: the session goes on, the damaged frame is counted once per burst of
/// errors, the frames after it wait for the next keyframe (counted as dropped), and
/// nothing is decoded from a frame that references lost data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_frames_are_skipped_up_to_the_next_keyframe() {
    use Item::*;
    let s = script(
        vec![Attempt::Play(vec![
            Frame(0),
            Frame(1),
            Damaged,
            Damaged,
            Damaged,
            Frame(2),
            Frame(3),
            Frame(0),
            Frame(1),
            Lossy(2, 3),
            Frame(3),
            Lossy(0, 1),
            Frame(1),
            Silence,
        ])],
        4,
    );
    let (cam, first) = start(config(|c| c.decode = DecodePolicy::Continuous), &s);
    first.await.unwrap().unwrap();
    let received = || cam.status.frames_received.load(Ordering::Relaxed);
    until("every frame received", || received() == 10).await;
    until("decoded", || cam.status.snapshot().frames_decoded == 6).await;
    let st = cam.status();
    assert_eq!(st.state, CameraState::Streaming);
    assert_eq!(st.reconnects, 0);
    assert_eq!(st.partial_frames_skipped, 1, "{st:#?}");
    // 2 and 3 after the errors, 2 and 3 after the loss.
    assert_eq!(st.frames_dropped, 4, "{st:#?}");
    assert!(st.last_error.is_none(), "{st:#?}");
    assert!(!st.picture_stale);
    assert_eq!(st.video_lost_since_ms, None);
    cam.stop();
}

/// Errors that video never follows: after `frame_timeout` the session ends with the first
/// of them, and the camera reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_without_video_end_the_session() {
    let s = script(
        vec![
            Attempt::Play(vec![Item::Frame(0), Item::DamagedForever]),
            Attempt::Play(vec![Item::Frame(0), Item::Silence]),
        ],
        1,
    );
    let (cam, first) = start(config(|c| c.frame_timeout = Duration::from_millis(300)), &s);
    first.await.unwrap().unwrap();
    until("reopened", || s.opens.lock().len() == 2).await;
    let opens = s.opens.lock().clone();
    assert!(opens[1] - opens[0] >= Duration::from_millis(300));
    let e = cam.status.last_error().expect("the stream's error");
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(
        e.message.contains("scripted depacketization error"),
        "{e:?}"
    );
    cam.stop();
}

/// A stream that played and then broke is reopened at once, without the backoff; if it
/// breaks again soon after, the backoff applies as for any failure. Meanwhile the last
/// picture is served, and the status says it is stale, how old, and how long the camera
/// has been without video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_stream_is_reopened_at_once_and_its_last_picture_served() {
    let s = script(
        vec![
            Attempt::Play(vec![Item::Frame(0), Item::End]),
            Attempt::Play(vec![Item::Frame(0), Item::End]),
            Attempt::Fail(ErrorKind::Unreachable),
            Attempt::Fail(ErrorKind::Unreachable),
        ],
        1,
    );
    let (cam, first) = start(
        config(|c| {
            c.persistent = true;
            c.backoff_initial = Duration::from_millis(400);
            c.backoff_max = Duration::from_secs(30);
        }),
        &s,
    );
    first.await.unwrap().unwrap();
    until("third open", || s.opens.lock().len() == 3).await;
    let opens = s.opens.lock().clone();
    assert!(
        opens[1] - opens[0] < Duration::from_millis(150),
        "first reconnect waited {:?}",
        opens[1] - opens[0]
    );
    assert!(
        opens[2] - opens[1] >= Duration::from_millis(200),
        "second reconnect waited only {:?}",
        opens[2] - opens[1]
    );
    until("reconnecting", || {
        cam.status.state() == CameraState::Reconnecting
    })
    .await;
    let f = cam
        .snapshot(SnapshotOptions::full())
        .await
        .expect("the last picture while reconnecting");
    assert_eq!((f.width, f.height), (128, 96));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let st = cam.status();
    assert!(st.picture_stale, "{st:#?}");
    assert!(st.picture_age_ms.unwrap() >= 100, "{st:#?}");
    assert!(st.video_lost_since_ms.is_some(), "{st:#?}");
    assert!(st.video_lost_ms >= 100, "{st:#?}");
    cam.stop();
}

/// A snapshot that cannot finish in time fails at the config's snapshot bound with
/// `Timeout`: here its JPEG encode waits for the runtime's only blocking thread, which is
/// busy. Once that thread is free, the next snapshot succeeds.
#[test]
fn snapshot_bound_fires_with_timeout() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = script(vec![Attempt::Play(vec![Item::Frame(0), Item::Silence])], 1);
        let (cam, first) = start(
            config(|c| c.snapshot_timeout = Some(Duration::from_millis(300))),
            &s,
        );
        first.await.unwrap().unwrap();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = tokio::task::spawn_blocking(move || {
            let _ = released.recv();
        });
        let small = || SnapshotOptions::full().max_width(64);
        let started = Instant::now();
        let e = tokio::time::timeout(Duration::from_secs(5), cam.snapshot(small()))
            .await
            .expect("the snapshot bound did not fire")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(e.message().contains("snapshotTimeoutMs"), "{e}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        release.send(()).unwrap();
        busy.await.unwrap();
        let f = cam.snapshot(small()).await.unwrap();
        assert_eq!(f.width, 64);
        cam.stop();
    });
}
