//! End-to-end tests: the demo camera against `retina` (the RTSP client camkit uses), raw
//! RTSP over a socket, and openh264's decoder.

use std::time::Duration;

use futures::StreamExt as _;
use openh264::formats::YUVSource as _;
use retina::client::{
    Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat, VideoFrame};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::picture::yuv_to_rgb;
use super::*;

const W: u32 = 320;
const H: u32 = 240;

fn small() -> DemoCameraOptions {
    DemoCameraOptions {
        port: 0,
        width: W,
        height: H,
        fps: 30,
        bitrate_bps: 1_000_000,
        ..Default::default()
    }
}

async fn start(opts: DemoCameraOptions) -> DemoCamera {
    DemoCamera::start(opts).await.expect("demo camera starts")
}

/// DESCRIBE, SETUP (TCP unless told otherwise), PLAY with retina.
async fn open(
    url: &str,
    creds: Option<(&str, &str)>,
    transport: Transport,
) -> Result<Demuxed, retina::Error> {
    let url = url::Url::parse(url).unwrap();
    let creds = creds.map(|(u, p)| Credentials {
        username: u.into(),
        password: p.into(),
    });
    let mut session = Session::describe(url, SessionOptions::default().creds(creds)).await?;
    session
        .setup(
            0,
            SetupOptions::default()
                .transport(transport)
                .frame_format(FrameFormat::SIMPLE),
        )
        .await?;
    session.play(PlayOptions::default()).await?.demuxed()
}

fn tcp() -> Transport {
    Transport::Tcp(Default::default())
}

/// The next `n` video frames (RTCP items are skipped).
async fn frames(demuxed: &mut Demuxed, n: usize) -> Vec<VideoFrame> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while out.len() < n {
            match demuxed.next().await {
                Some(Ok(CodecItem::VideoFrame(f))) => out.push(f),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("stream error: {e}"),
                None => panic!("stream ended after {} frames", out.len()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} frames within 10 s", out.len()));
    out
}

/// A decoded picture: dimensions and tightly packed planes.
struct Picture {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

impl Picture {
    fn rgb_at(&self, x: usize, y: usize) -> [u8; 3] {
        let cw = self.width / 2;
        yuv_to_rgb([
            self.y[y * self.width + x],
            self.u[y / 2 * cw + x / 2],
            self.v[y / 2 * cw + x / 2],
        ])
    }
}

/// Decodes each frame (Annex B, as `FrameFormat::SIMPLE` gives) with openh264.
fn decode(frames: &[VideoFrame]) -> Vec<Picture> {
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let mut out = Vec::new();
    for f in frames {
        if let Some(yuv) = decoder.decode(f.data()).expect("frame decodes") {
            let (w, h) = yuv.dimensions();
            let (sy, su, sv) = yuv.strides();
            let rows = |plane: &[u8], stride: usize, w: usize, h: usize| -> Vec<u8> {
                (0..h)
                    .flat_map(|r| plane[r * stride..r * stride + w].iter().copied())
                    .collect()
            };
            out.push(Picture {
                width: w,
                height: h,
                y: rows(yuv.y(), sy, w, h),
                u: rows(yuv.u(), su, w / 2, h / 2),
                v: rows(yuv.v(), sv, w / 2, h / 2),
            });
        }
    }
    out
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn retina_plays_and_frames_decode() {
    let cam = start(small()).await;
    assert!(cam.url().starts_with("rtsp://127.0.0.1:"));
    assert!(cam.url().ends_with("/demo"));
    let mut d = open(&cam.url(), None, tcp()).await.unwrap();
    let got = frames(&mut d, 12).await;
    assert!(got[0].is_random_access_point(), "first frame is a keyframe");
    assert!(got.iter().skip(1).any(|f| !f.is_random_access_point()));
    let pics = decode(&got);
    assert!(
        pics.len() >= 10,
        "{} of {} frames decoded",
        pics.len(),
        got.len()
    );
    for p in &pics {
        assert_eq!((p.width, p.height), (W as usize, H as usize));
    }
    // Consecutive pictures differ (clock, counter, moving box).
    assert_ne!(pics[0].y, pics[pics.len() - 1].y);
    assert_eq!(cam.sessions(), 1);
    drop(d);
    cam.stop().await;
}

#[tokio::test]
async fn decoded_colour_band_matches() {
    for (w, h) in [(W, H), (640, 360), (1280, 720)] {
        let cam = start(DemoCameraOptions {
            width: w,
            height: h,
            ..small()
        })
        .await;
        let mut d = open(&cam.url(), None, tcp()).await.unwrap();
        let pics = decode(&frames(&mut d, 5).await);
        let pic = pics.last().expect("a decoded picture");
        for (i, (name, want)) in COLOR_BAND.iter().enumerate() {
            let (x, y, bw, bh) = color_band_rect(i, w, h);
            let got = pic.rgb_at((x + bw / 2) as usize, (y + bh / 2) as usize);
            for c in 0..3 {
                let diff = (i32::from(got[c]) - i32::from(want[c])).abs();
                assert!(diff <= 24, "{w}x{h} {name}: decoded {got:?}, want {want:?}");
            }
        }
        drop(d);
        cam.stop().await;
    }
}

#[tokio::test]
async fn two_clients_at_once() {
    let cam = start(small()).await;
    let url = cam.url();
    let (a, b) = tokio::join!(open(&url, None, tcp()), open(&url, None, tcp()));
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    let (fa, fb) = tokio::join!(frames(&mut a, 10), frames(&mut b, 10));
    assert!(fa[0].is_random_access_point() && fb[0].is_random_access_point());
    assert_eq!(cam.sessions(), 2);
    // One client leaving does not disturb the other.
    drop(a);
    wait_for("one session", || cam.sessions() == 1).await;
    let more = frames(&mut b, 5).await;
    let mut all = fb;
    all.extend(more);
    assert_eq!(decode(&all).len(), 15);
    drop(b);
    cam.stop().await;
}

#[tokio::test]
async fn udp_setup_is_unsupported_transport() {
    let cam = start(small()).await;
    let err = open(&cam.url(), None, Transport::Udp(Default::default()))
        .await
        .err()
        .expect("UDP SETUP fails");
    assert_eq!(err.status_code(), Some(461), "{err}");
    assert_eq!(cam.sessions(), 0);
    cam.stop().await;
}

#[tokio::test]
async fn basic_auth() {
    let cam = start(DemoCameraOptions {
        credentials: Some(("viewer".into(), "s3cret:x".into())),
        ..small()
    })
    .await;
    let url = cam.url();
    let err = open(&url, None, tcp()).await.err().expect("no credentials");
    assert_eq!(err.status_code(), Some(401), "{err}");
    let err = open(&url, Some(("viewer", "wrong")), tcp())
        .await
        .err()
        .expect("wrong password");
    assert_eq!(err.status_code(), Some(401), "{err}");
    let mut d = open(&url, Some(("viewer", "s3cret:x")), tcp())
        .await
        .expect("right credentials");
    let got = frames(&mut d, 10).await;
    assert!(got[0].is_random_access_point());
    drop(d);
    cam.stop().await;
}

#[tokio::test]
async fn sessions_end_and_encoder_idles() {
    let cam = start(small()).await;
    // Idle from the start: only the startup picture (for SPS/PPS) is encoded.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cam.frames_encoded(), 1);
    assert_eq!(cam.sessions(), 0);

    let mut a = open(&cam.url(), None, tcp()).await.unwrap();
    let mut b = open(&cam.url(), None, tcp()).await.unwrap();
    let _ = tokio::join!(frames(&mut a, 5), frames(&mut b, 5));
    assert_eq!(cam.sessions(), 2);
    assert!(cam.frames_encoded() >= 6);
    drop(a);
    drop(b);
    wait_for("no sessions", || cam.sessions() == 0).await;

    // The encoder stops: the count settles (one picture may have been in progress).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let settled = cam.frames_encoded();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cam.frames_encoded(),
        settled,
        "encoder idles with no clients"
    );

    // And starts again for a new client, beginning with a keyframe.
    let mut c = open(&cam.url(), None, tcp()).await.unwrap();
    assert!(frames(&mut c, 3).await[0].is_random_access_point());
    drop(c);
    cam.stop().await;
}

/// A test client speaking raw RTSP.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
    cseq: u32,
    /// Interleaved frames seen: (channel, payload).
    interleaved: Vec<(u8, Vec<u8>)>,
}

#[derive(Debug)]
struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl Raw {
    async fn connect(cam: &DemoCamera) -> Raw {
        Raw {
            s: TcpStream::connect(cam.local_addr()).await.unwrap(),
            buf: Vec::new(),
            cseq: 0,
            interleaved: Vec::new(),
        }
    }

    async fn send_raw(&mut self, data: &[u8]) {
        self.s.write_all(data).await.unwrap();
    }

    /// Sends a request with the next CSeq and returns the response to it.
    async fn request(&mut self, method: &str, uri: &str, headers: &[(&str, &str)]) -> RawResponse {
        self.cseq += 1;
        let mut req = format!("{method} {uri} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.send_raw(req.as_bytes()).await;
        let resp = self.response().await;
        assert_eq!(
            resp.header("CSeq"),
            Some(self.cseq.to_string().as_str()),
            "CSeq echoed: {}",
            resp.head
        );
        resp
    }

    /// Reads the next response, collecting interleaved frames before it.
    async fn response(&mut self) -> RawResponse {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                    let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                    if self.buf.len() >= 4 + len {
                        let frame: Vec<u8> = self.buf.drain(..4 + len).collect();
                        self.interleaved.push((frame[1], frame[4..].to_vec()));
                        continue;
                    }
                } else if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
                    let mut resp = RawResponse {
                        status,
                        head,
                        body: Vec::new(),
                    };
                    let len: usize = resp
                        .header("Content-Length")
                        .map_or(0, |v| v.parse().unwrap());
                    if self.buf.len() >= end + 4 + len {
                        resp.body = self.buf[end + 4..end + 4 + len].to_vec();
                        self.buf.drain(..end + 4 + len);
                        return resp;
                    }
                }
                let mut chunk = [0u8; 16384];
                let n = self.s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "server closed the connection");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("response within 5 s")
    }

    /// Reads until the server closes the connection (or 5 s pass).
    async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match self.s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

#[tokio::test]
async fn raw_rtsp_state_machine() {
    let cam = start(small()).await;
    let url = cam.url();
    let track = format!("{url}/trackID=0");
    let mut c = Raw::connect(&cam).await;

    let r = c.request("OPTIONS", "*", &[]).await;
    assert_eq!(r.status, 200);
    for m in [
        "DESCRIBE",
        "SETUP",
        "PLAY",
        "TEARDOWN",
        "GET_PARAMETER",
        "SET_PARAMETER",
    ] {
        assert!(r.header("Public").unwrap().contains(m));
    }
    assert_eq!(c.request("FOO", &url, &[]).await.status, 501);
    let r = c
        .request("DESCRIBE", &url, &[("Require", "funky-feature")])
        .await;
    assert_eq!(
        (r.status, r.header("Unsupported")),
        (551, Some("funky-feature"))
    );
    let other = url.replace("/demo", "/other");
    assert_eq!(c.request("DESCRIBE", &other, &[]).await.status, 404);
    assert_eq!(
        c.request("PLAY", &url, &[]).await.status,
        455,
        "PLAY before SETUP"
    );

    // Interleaved data from the client before a request is skipped.
    c.send_raw(b"$\x01\x00\x08\x80\xc9\x00\x01\x00\x00\x00\x00")
        .await;
    let r = c
        .request("DESCRIBE", &url, &[("Accept", "application/sdp")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/sdp"));
    assert_eq!(r.header("Content-Base"), Some(format!("{url}/").as_str()));
    let sdp = String::from_utf8(r.body).unwrap();
    for needle in [
        "m=video 0 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
        "packetization-mode=1",
        "profile-level-id=",
        "sprop-parameter-sets=",
        "a=control:trackID=0",
        "a=framerate:30",
    ] {
        assert!(sdp.contains(needle), "{needle} missing from\n{sdp}");
    }

    let r = c
        .request(
            "SETUP",
            &track,
            &[("Transport", "RTP/AVP;unicast;client_port=5000-5001")],
        )
        .await;
    assert_eq!(r.status, 461);
    let r = c
        .request(
            "SETUP",
            &track,
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3")],
        )
        .await;
    assert_eq!(r.status, 200);
    let transport = r.header("Transport").unwrap().to_owned();
    assert!(
        transport.starts_with("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc="),
        "{transport}"
    );
    let session_hdr = r.header("Session").unwrap().to_owned();
    assert!(session_hdr.ends_with(";timeout=60"), "{session_hdr}");
    let session = session_hdr.split(';').next().unwrap().to_owned();
    let ssrc = u32::from_str_radix(transport.rsplit('=').next().unwrap(), 16).unwrap();

    assert_eq!(
        c.request("PLAY", &url, &[("Session", "nope")]).await.status,
        454
    );
    let r = c.request("PLAY", &url, &[("Session", &session)]).await;
    assert_eq!(r.status, 200);
    let rtp_info = r.header("RTP-Info").unwrap().to_owned();
    assert!(
        rtp_info.starts_with(&format!("url={track};seq=")),
        "{rtp_info}"
    );
    let seq: u16 = rtp_info
        .split(";seq=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    wait_for("playing", || cam.sessions() == 1).await;

    // Keepalives (with client RTCP in between) are answered while video flows.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.send_raw(b"$\x03\x00\x08\x80\xc9\x00\x01\x00\x00\x00\x00")
        .await;
    assert_eq!(
        c.request("GET_PARAMETER", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    assert_eq!(
        c.request("SET_PARAMETER", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    assert_eq!(
        c.request("OPTIONS", &url, &[("Session", &session)])
            .await
            .status,
        200
    );

    // RTP on channel 2, RTCP on 3; first packet has the announced seq and ssrc; the first
    // access unit starts with SPS.
    let rtp: Vec<&Vec<u8>> = c
        .interleaved
        .iter()
        .filter(|(ch, _)| *ch == 2)
        .map(|(_, p)| p)
        .collect();
    assert!(rtp.len() > 3, "{} RTP packets", rtp.len());
    assert!(c.interleaved.iter().all(|(ch, _)| *ch == 2 || *ch == 3));
    let first = rtp[0];
    assert_eq!(u16::from_be_bytes([first[2], first[3]]), seq);
    assert_eq!(
        u32::from_be_bytes([first[8], first[9], first[10], first[11]]),
        ssrc
    );
    assert_eq!(first[12] & 0x1F, 7, "first NAL is the SPS");
    for (i, p) in rtp.iter().enumerate() {
        assert_eq!(p[0] >> 6, 2, "RTP version");
        assert_eq!(p[1] & 0x7F, 96);
        assert!(p.len() - 12 <= super::rtp::MAX_PAYLOAD);
        assert_eq!(
            u16::from_be_bytes([p[2], p[3]]),
            seq.wrapping_add(i as u16),
            "consecutive sequence numbers"
        );
    }
    let sr = c
        .interleaved
        .iter()
        .find(|(ch, _)| *ch == 3)
        .expect("a sender report");
    assert_eq!(sr.1[1], 200);

    assert_eq!(
        c.request("PAUSE", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    wait_for("paused", || cam.sessions() == 0).await;
    assert_eq!(
        c.request("PLAY", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    wait_for("playing again", || cam.sessions() == 1).await;
    assert_eq!(
        c.request("TEARDOWN", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    wait_for("torn down", || cam.sessions() == 0).await;
    assert_eq!(
        c.request("PLAY", &url, &[("Session", &session)])
            .await
            .status,
        454
    );

    // Garbage closes the connection after a 400; the camera keeps serving others.
    c.send_raw(b"\x00\x01 garbage\r\n\r\n").await;
    let r = c.response().await;
    assert_eq!(r.status, 400);
    assert!(c.closed().await);
    let mut d = open(&url, None, tcp()).await.unwrap();
    frames(&mut d, 2).await;
    drop(d);
    cam.stop().await;
}

#[tokio::test]
async fn stop_and_drop_close_everything() {
    let cam = start(small()).await;
    let addr = cam.local_addr();
    let mut idle = Raw::connect(&cam).await;
    let mut d = open(&cam.url(), None, tcp()).await.unwrap();
    frames(&mut d, 2).await;
    cam.stop().await;
    assert!(idle.closed().await, "connections closed on stop");
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
    // The playing client's stream ends (error or end of stream).
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match d.next().await {
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok());

    let cam = start(small()).await;
    let addr = cam.local_addr();
    let mut idle = Raw::connect(&cam).await;
    drop(cam);
    assert!(idle.closed().await, "connections closed on drop");
    wait_for("listener closed", || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err()
    })
    .await;
}

#[tokio::test]
async fn bad_options() {
    let bad = [
        DemoCameraOptions {
            path: "demo".into(),
            ..small()
        },
        DemoCameraOptions {
            path: "/de mo".into(),
            ..small()
        },
        DemoCameraOptions {
            width: 321,
            ..small()
        },
        DemoCameraOptions {
            height: 10,
            ..small()
        },
        DemoCameraOptions { fps: 0, ..small() },
        DemoCameraOptions {
            bitrate_bps: 5,
            ..small()
        },
        DemoCameraOptions {
            credentials: Some(("a:b".into(), "c".into())),
            ..small()
        },
    ];
    for opts in bad {
        let e = DemoCamera::start(opts.clone()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{opts:?}: {e}");
    }
    let cam = start(small()).await;
    let e = DemoCamera::start(DemoCameraOptions {
        port: cam.port(),
        ..small()
    })
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.message().contains(&cam.port().to_string()), "{e}");
    assert!(e.message().contains("in use"), "{e}");
    // Options' Debug never shows the password.
    let opts = DemoCameraOptions {
        credentials: Some(("u".into(), "hunter2".into())),
        ..small()
    };
    assert!(!format!("{opts:?}").contains("hunter2"));
    cam.stop().await;
}

#[tokio::test]
async fn trailing_slash_and_root_paths() {
    let cam = start(DemoCameraOptions {
        path: "/live/cam1/".into(),
        ..small()
    })
    .await;
    assert!(cam.url().ends_with("/live/cam1"));
    let mut d = open(&format!("{}/", cam.url()), None, tcp()).await.unwrap();
    frames(&mut d, 2).await;
    drop(d);
    cam.stop().await;

    let cam = start(DemoCameraOptions {
        path: "/".into(),
        ..small()
    })
    .await;
    let mut d = open(&cam.url(), None, tcp()).await.unwrap();
    frames(&mut d, 2).await;
    drop(d);
    cam.stop().await;
}

/// ffprobe (when installed) reads the stream: `cargo test -p camkit-demo-camera --lib -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ffprobe"]
async fn ffprobe_reads_stream() {
    let cam = start(small()).await;
    let url = cam.url();
    for transport in [Some("tcp"), None] {
        let mut cmd = std::process::Command::new("ffprobe");
        cmd.args(["-v", "error"]);
        if let Some(t) = transport {
            cmd.args(["-rtsp_transport", t]);
        }
        cmd.args([
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,pix_fmt,color_range",
            "-read_intervals",
            "%+1",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "default=nw=1",
            &url,
        ]);
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .expect("ffprobe runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        tracing::info!(?transport, %stdout, stderr = %String::from_utf8_lossy(&out.stderr), "ffprobe");
        assert!(out.status.success());
        assert!(stdout.contains("codec_name=h264"), "{stdout}");
        assert!(stdout.contains(&format!("width={W}")), "{stdout}");
    }
    cam.stop().await;
}

/// Encode cost at 1280x720: `cargo test -p camkit-demo-camera --lib tests::encode_timing -- --ignored --nocapture`.
#[test]
#[ignore = "timing report, not a check"]
fn encode_timing_720p() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let settings = encoder::EncoderSettings {
        width: 1280,
        height: 720,
        fps: 15,
        bitrate_bps: 2_000_000,
        gop_frames: 30,
        queue_frames: 30,
    };
    let mut gen = picture::PictureGenerator::new(1280, 720, 15);
    let n = 60;
    let t = std::time::Instant::now();
    for i in 0..n {
        gen.render(i, std::time::SystemTime::now());
    }
    let render_ms = t.elapsed().as_secs_f64() * 1000.0 / n as f64;
    let (p_ms, idr_ms, p_bytes, idr_bytes) = encoder::time_encode(settings, n as usize);
    tracing::info!(
        render_ms,
        p_frame_ms = p_ms,
        idr_frame_ms = idr_ms,
        p_frame_bytes = p_bytes,
        idr_frame_bytes = idr_bytes,
        "1280x720 demo camera: cost per frame (render included in the encode times)"
    );
}

/// A client that stops reading falls behind; when it reads again its stream resumes at a
/// keyframe (with SPS/PPS), sequence numbers stay continuous, and the encoder never waited.
#[tokio::test]
async fn slow_client_skips_to_a_keyframe() {
    // A short queue, so the stall below (3 s of 720p60, ~300 KB) outgrows queue plus
    // socket buffers.
    let cam = DemoCamera::start_with_queue(
        DemoCameraOptions {
            width: 1280,
            height: 720,
            fps: 60,
            bitrate_bps: 8_000_000,
            // No periodic keyframe in the test's time: recovery must come from a forced one.
            gop_frames: 100_000,
            ..small()
        },
        8,
    )
    .await
    .unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut c = Raw {
        s: sock.connect(cam.local_addr()).await.unwrap(),
        buf: Vec::new(),
        cseq: 0,
        interleaved: Vec::new(),
    };
    let url = cam.url();
    let r = c
        .request(
            "SETUP",
            &format!("{url}/trackID=0"),
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
        )
        .await;
    let session = r
        .header("Session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        c.request("PLAY", &url, &[("Session", &session)])
            .await
            .status,
        200
    );

    // Stall: the encoder keeps its pace regardless.
    let before = cam.frames_encoded();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = cam.frames_encoded() - before;
    assert!(
        during >= 120,
        "encoder made only {during} pictures in 3 s at 60 fps"
    );

    // Read again: drain the backlog, then some fresh video.
    c.request("GET_PARAMETER", &url, &[("Session", &session)])
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.request("GET_PARAMETER", &url, &[("Session", &session)])
        .await;

    // Group RTP packets into access units by timestamp.
    let rtp: Vec<&Vec<u8>> = c
        .interleaved
        .iter()
        .filter(|(ch, _)| *ch == 0)
        .map(|(_, p)| p)
        .collect();
    let mut aus: Vec<(u32, Vec<u8>)> = Vec::new(); // (timestamp, first NAL type)
    for (i, p) in rtp.iter().enumerate() {
        if i > 0 {
            let prev = u16::from_be_bytes([rtp[i - 1][2], rtp[i - 1][3]]);
            assert_eq!(u16::from_be_bytes([p[2], p[3]]), prev.wrapping_add(1));
        }
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        let nal_type = if p[12] & 0x1F == 28 {
            p[13] & 0x1F
        } else {
            p[12] & 0x1F
        };
        match aus.last_mut() {
            Some((t, types)) if *t == ts => types.push(nal_type),
            _ => aus.push((ts, vec![nal_type])),
        }
    }
    assert_eq!(aus[0].1[0], 7, "starts with SPS");
    // 60 fps = 1500 ticks per frame; a jump of many frames is where the client skipped.
    let gaps: Vec<usize> = (1..aus.len())
        .filter(|&i| aus[i].0.wrapping_sub(aus[i - 1].0) > 10 * 1500)
        .collect();
    assert!(
        !gaps.is_empty(),
        "the stalled client never lagged ({} access units, {} bytes)",
        aus.len(),
        rtp.iter().map(|p| p.len()).sum::<usize>()
    );
    for i in gaps {
        assert_eq!(aus[i].1[..3], [7, 8, 5], "resumes at an IDR with SPS/PPS");
    }
    cam.stop().await;
}

#[tokio::test]
async fn ipv6_loopback() {
    let Ok(cam) = DemoCamera::start(DemoCameraOptions {
        bind: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ..small()
    })
    .await
    else {
        return; // No IPv6 on this machine.
    };
    assert!(cam.url().starts_with("rtsp://[::1]:"), "{}", cam.url());
    let mut d = open(&cam.url(), None, tcp()).await.unwrap();
    assert!(frames(&mut d, 3).await[0].is_random_access_point());
    drop(d);
    cam.stop().await;
}

/// Each `Reply` fault, as retina sees it at DESCRIBE; clearing the faults restores service.
#[tokio::test]
async fn fault_replies_at_describe() {
    use faults::{Faults, Reply};
    let cam = start(small()).await;
    let url = url::Url::parse(&cam.url()).unwrap();
    let describe = || {
        tokio::time::timeout(
            Duration::from_secs(2),
            Session::describe(url.clone(), SessionOptions::default()),
        )
    };
    for code in [401, 403, 404, 453, 454, 503] {
        cam.set_faults(Faults::answer("DESCRIBE", Reply::Status(code)));
        let err = describe().await.expect("answered").err().expect("refused");
        assert_eq!(err.status_code(), Some(code), "{err}");
    }
    for reply in [Reply::Garbage, Reply::Truncated, Reply::Close] {
        cam.set_faults(Faults::answer("*", reply));
        let err = describe().await.expect("answered").err().expect("refused");
        assert_eq!(err.status_code(), None, "{reply:?}: {err}");
    }
    cam.set_faults(Faults::answer("DESCRIBE", Reply::Silence));
    assert!(describe().await.is_err(), "no answer: the client times out");
    // Only the targeted method misbehaves.
    cam.set_faults(Faults::answer("PLAY", Reply::Status(500)));
    let err = open(&cam.url(), None, tcp())
        .await
        .err()
        .expect("PLAY fails");
    assert_eq!(err.status_code(), Some(500));
    cam.clear_faults();
    assert_eq!(cam.faults(), Faults::none());
    let mut d = open(&cam.url(), None, tcp()).await.unwrap();
    frames(&mut d, 2).await;
    drop(d);
    cam.stop().await;
}

/// What the SDP announces: H.265 instead of H.264; an audio track before the video.
#[tokio::test]
async fn fault_sdp_codec_and_audio() {
    use faults::{AnnouncedCodec, Audio, Faults};
    let cam = start(small()).await;
    let url = url::Url::parse(&cam.url()).unwrap();
    cam.set_faults(Faults {
        announce_codec: AnnouncedCodec::H265,
        ..Faults::default()
    });
    let s = Session::describe(url.clone(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(s.streams()[0].encoding_name(), "h265");
    drop(s);

    // Audio first, then video; packets on channels the client never set up are ignored
    // by retina, and the video (stream 1) plays.
    cam.set_faults(Faults {
        audio: Audio::AnnounceAndSend,
        ..Faults::default()
    });
    let mut s = Session::describe(url, SessionOptions::default())
        .await
        .unwrap();
    let media: Vec<&str> = s.streams().iter().map(|s| s.media()).collect();
    assert_eq!(media, ["audio", "video"]);
    assert_eq!(s.streams()[0].encoding_name(), "pcmu");
    s.setup(
        1,
        SetupOptions::default()
            .transport(tcp())
            .frame_format(FrameFormat::SIMPLE),
    )
    .await
    .unwrap();
    let mut d = s
        .play(PlayOptions::default())
        .await
        .unwrap()
        .demuxed()
        .unwrap();
    let got = frames(&mut d, 5).await;
    assert!(got.iter().all(|f| f.stream_id() == 1));
    drop(d);
    cam.stop().await;
}

/// Loss, corruption, a new resolution and hang-ups, as a playing retina client sees them.
#[tokio::test]
async fn fault_stream_damage() {
    use faults::Faults;
    let cam = start(small()).await;
    let mut d = open(&cam.url(), None, tcp()).await.unwrap();
    frames(&mut d, 2).await;

    // Loss: sequence numbers skip, retina says so.
    cam.set_faults(Faults {
        drop_one_packet_in: Some(3),
        ..Faults::default()
    });
    let mut lossy = 0;
    tokio::time::timeout(Duration::from_secs(5), async {
        while lossy < 3 {
            match d.next().await {
                Some(Ok(CodecItem::VideoFrame(f))) if f.loss() > 0 => lossy += 1,
                Some(Ok(_)) => {}
                other => panic!("stream ended: {other:?}"),
            }
        }
    })
    .await
    .expect("frames with loss");

    // Corruption: every frame arrives (the byte stream is valid), the pictures are wrong.
    cam.set_faults(Faults {
        corrupt_one_frame_in: Some(1),
        ..Faults::default()
    });
    frames(&mut d, 5).await;

    // New resolution: an IDR with new parameters.
    cam.clear_faults();
    cam.set_resolution(160, 96).unwrap();
    assert_eq!(
        cam.set_resolution(161, 96).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let resized = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(CodecItem::VideoFrame(f))) = d.next().await {
                if f.has_new_parameters() {
                    return f;
                }
            }
        }
    })
    .await
    .expect("new parameters");
    assert!(resized.is_random_access_point());
    let Some(retina::codec::ParametersRef::Video(v)) = d.streams()[0].parameters() else {
        panic!("video parameters")
    };
    assert_eq!(v.pixel_dimensions(), (160, 96));
    let pics = decode(&[resized]);
    assert_eq!((pics[0].width, pics[0].height), (160, 96));

    // Hang-up after 3 frames: the stream ends.
    cam.set_faults(Faults {
        hang_up_after_frames: Some(3),
        ..Faults::default()
    });
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match d.next().await {
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "hung up");
    cam.stop().await;
}

/// A single-session camera: a second SETUP gets 453 until the first session ends; a
/// dropped connection frees its session.
#[tokio::test]
async fn fault_one_session_at_a_time() {
    use faults::Faults;
    let cam = start(small()).await;
    cam.set_faults(Faults {
        max_sessions: Some(1),
        ..Faults::default()
    });
    let a = open(&cam.url(), None, tcp()).await.unwrap();
    let err = open(&cam.url(), None, tcp()).await.err().expect("busy");
    assert_eq!(err.status_code(), Some(453), "{err}");
    cam.drop_connections();
    drop(a);
    wait_for("session freed", || cam.sessions() == 0).await;
    let mut b = open(&cam.url(), None, tcp()).await.unwrap();
    frames(&mut b, 2).await;
    drop(b);
    cam.stop().await;
}
