//! End-to-end tests: the demo camera against `retina` (the RTSP client camkit uses), raw
//! RTSP over a socket, and openh264's decoder. This module holds the clients the suites
//! share; the suites are `playback` (retina plays, decodes, several clients, options),
//! `raw_rtsp` (the state machine, request by request) and `fault_injection` (the faults
//! as retina sees them).

mod fault_injection;
mod playback;
mod raw_rtsp;

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
