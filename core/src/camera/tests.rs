//! The camera task against scripted streams (the [`Opener`] seam): reconnect with backoff,
//! the watchdog, the `onDemand` policy and stopping, without an RTSP server. The frames are
//! real H.264 (OpenH264's encoder), so what is decoded is checked by the decoder itself.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::*;
use crate::decode_worker::VideoCodec;
use crate::session::{Opened, VideoFrame, VideoStream};
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
    /// Nothing ever arrives again, though the session stays open.
    Silence,
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
                    info: StreamInfo {
                        codec: Some("h264".into()),
                        full_range: true,
                        ..Default::default()
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
            match self.items.pop_front() {
                Some(Item::Frame(i)) => Some(Ok(StreamItem::Video(VideoFrame {
                    data: bytes::Bytes::from(self.gop[i].clone()),
                    keyframe: i == 0,
                    loss: 0,
                    new_params: None,
                    rtp_timestamp: i as i64 * 6000,
                    clock_rate: 90_000,
                }))),
                Some(Item::Silence) | None => futures::future::pending().await,
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
    Camera::start_with(config, origin, events, &tokio::runtime::Handle::current())
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

/// A camera that keeps the session open but stops sending video: the watchdog ends the
/// session after `frame_timeout` with a `Timeout` and the camera opens the stream again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchdog_fires_on_silence() {
    let s = script(
        vec![
            Attempt::Play(vec![Item::Frame(0), Item::Silence]),
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
