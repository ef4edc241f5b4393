//! The RTSP 1.0 server (RFC 2326): accept loop, request parsing, and the per-connection
//! session state machine (Init → Ready → Playing), with RTP interleaved on the RTSP
//! connection (`RTP/AVP/TCP;unicast;interleaved=0-1`).
//!
//! One task per connection, which owns at most one session. It reads the client's socket
//! concurrently with sending video, so keepalives (`GET_PARAMETER`/`SET_PARAMETER`/`OPTIONS`),
//! `TEARDOWN` and interleaved RTCP from the client are handled (the latter skipped) while
//! playing. Everything a client sends is size-bounded and parsed without panicking; a request
//! that cannot be parsed gets an error response and the connection is closed.
//!
//! `message` holds the wire format (request parsing, responses), `session` the state machine
//! each connection runs; this file the accept loop and the connection task that ties them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use super::encoder::{EncodedFrame, EncoderShared};
use super::faults::{AnnouncedCodec, Audio, FaultState, Reply};

/// What the server answers with; fixed for the camera's lifetime (the SPS/PPS come from
/// the encoder, the faults from the test that set them).
pub(crate) struct ServerConfig {
    /// The presentation path, normalized: starts with `/`, no trailing `/` (unless it is `/`).
    pub base_path: String,
    pub credentials: Option<(String, String)>,
    pub fps: u32,
    pub bitrate_bps: u32,
    pub encoder: Arc<EncoderShared>,
    pub faults: Arc<FaultState>,
}

/// Session timeout announced in `Session: …;timeout=`; a connection with no data from the
/// client for this long is closed.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// A write (response or video) that does not complete in this time closes the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Limits on what a client may send.
const MAX_HEAD: usize = 8 * 1024;
const MAX_BODY: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
/// Connections beyond this are closed on accept.
const MAX_CONNECTIONS: usize = 64;
/// How often a playing session gets an RTCP sender report.
const SR_INTERVAL: Duration = Duration::from_secs(5);
const PAYLOAD_TYPE: u8 = 96;
/// The control path of the video track, relative to the presentation.
const TRACK: &str = "trackID=0";
/// The control path of the audio track a fault may announce.
const AUDIO_TRACK: &str = "trackID=1";
/// PCMU (G.711 µ-law): static payload type 0, 8 kHz.
const AUDIO_PAYLOAD_TYPE: u8 = 0;
/// What a fault sends instead of an RTSP response: an SSH banner and binary noise, as a
/// client that dialled the wrong port sees.
const GARBAGE: &[u8] =
    b"SSH-2.0-OpenSSH_9.2p1\r\n\x00\x00\x01\x0c\x0a\x14\xde\xad\xbe\xef garbage \xff\xfe\r\n\r\n";
const PUBLIC: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER";
const SERVER: &str = concat!("camkit-demo/", env!("CARGO_PKG_VERSION"));
const REALM: &str = "camkit-demo";
const CNAME: &str = "camkit-demo";

/// Accepts connections until `shutdown` changes (or its sender is dropped), then closes the
/// listener and every connection.
pub(crate) async fn serve(
    listener: TcpListener,
    cfg: Arc<ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    while !*shutdown.borrow_and_update() {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if conns.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "demo camera: too many connections; refusing");
                        continue;
                    }
                    conns.spawn(connection(stream, peer, Arc::clone(&cfg), shutdown.clone()));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "demo camera: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    conns.shutdown().await;
    tracing::debug!("demo camera server stopped");
}

mod message;
mod session;
#[cfg(test)]
mod tests;

use message::{parse_next, Parsed, Response};
use session::{Answer, Conn, Session};

async fn write_all(wr: &mut OwnedWriteHalf, data: &[u8]) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(data)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err(format!(
            "client did not read for {}s",
            WRITE_TIMEOUT.as_secs()
        )),
    }
}

/// The next access unit for a playing session; pending forever when not playing.
async fn next_frame(
    session: &mut Option<Session>,
) -> Result<Arc<EncodedFrame>, broadcast::error::RecvError> {
    match session.as_mut().and_then(|s| s.play.as_mut()) {
        Some(p) => p.rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    cfg: Arc<ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "demo camera: connection lost on accept");
            return;
        }
    };
    tracing::debug!(%peer, "demo camera: client connected");
    let (mut rd, mut wr) = stream.into_split();
    let mut hangups = cfg.faults.hangups();
    hangups.borrow_and_update();
    let mut conn = Conn {
        cfg,
        peer,
        local,
        session: None,
        silenced: false,
    };
    let mut buf = BytesMut::with_capacity(4096);
    let mut deadline = tokio::time::Instant::now() + SESSION_TIMEOUT;
    let why: String = loop {
        if let Err(why) = conn.handle_buffered(&mut buf, &mut wr).await {
            break why;
        }
        tokio::select! {
            _ = shutdown.changed() => break "camera stopped".into(),
            _ = hangups.changed() => break "fault: hung up on every client".into(),
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) => break "client closed the connection".into(),
                Ok(_) => deadline = tokio::time::Instant::now() + SESSION_TIMEOUT,
                Err(e) => break format!("read failed: {e}"),
            },
            f = next_frame(&mut conn.session) => match f {
                Ok(frame) => {
                    if let Err(why) = conn.send_frame(&frame, &mut wr).await {
                        break why;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(%peer, skipped = n, "demo camera: client fell behind; waiting for a keyframe");
                    if let Some(p) = conn.session.as_mut().and_then(|s| s.play.as_mut()) {
                        p.waiting_keyframe = true;
                    }
                    conn.cfg.encoder.request_keyframe();
                }
                Err(broadcast::error::RecvError::Closed) => break "encoder stopped".into(),
            },
            _ = tokio::time::sleep_until(deadline) => {
                break format!("no request for {}s (session timeout)", SESSION_TIMEOUT.as_secs());
            }
        }
    };
    if conn.session.as_ref().is_some_and(|s| s.play.is_some()) {
        tracing::info!(%peer, reason = %why, "demo camera: client stopped playing");
    } else {
        tracing::debug!(%peer, reason = %why, "demo camera: connection closed");
    }
}

/// See [`super::fuzz_rtsp_requests`]: returns every response (or fault bytes) the
/// connection would have sent.
pub(crate) fn fuzz_requests(data: &[u8]) -> Vec<Vec<u8>> {
    use super::encoder::ParameterSets;
    use super::faults::Faults;
    let Some((&sel, rest)) = data.split_first() else {
        return Vec::new();
    };
    // Deterministic session ids, so a corpus can name the session it set up.
    fastrand::seed(u64::from(sel));
    let faults = FaultState::new();
    faults.set(Faults {
        reply: match sel & 7 {
            4 => Some(("DESCRIBE".into(), Reply::Status(401))),
            5 => Some(("*".into(), Reply::Truncated)),
            6 => Some(("SETUP".into(), Reply::Silence)),
            7 => Some(("PLAY".into(), Reply::Garbage)),
            _ => None,
        },
        announce_codec: if sel & 8 != 0 {
            AnnouncedCodec::H265
        } else {
            AnnouncedCodec::H264
        },
        audio: match (sel >> 4) & 3 {
            0 => Audio::None,
            1 => Audio::Announce,
            _ => Audio::AnnounceAndSend,
        },
        max_sessions: (sel & 0x40 != 0).then_some(0),
        ..Faults::default()
    });
    let params = ParameterSets {
        sps: Bytes::from_static(&[0x67, 0x42, 0xC0, 0x1F, 0xDA, 0x01, 0x40, 0x16, 0xE8]),
        pps: Bytes::from_static(&[0x68, 0xCE, 0x3C, 0x80]),
    };
    let cfg = Arc::new(ServerConfig {
        base_path: "/demo".into(),
        credentials: (sel & 0x80 != 0).then(|| ("viewer".to_owned(), "s3cret:x".to_owned())),
        fps: 15,
        bitrate_bps: 1_000_000,
        encoder: EncoderShared::detached(params),
        faults: Arc::new(faults),
    });
    let mut conn = Conn {
        cfg,
        peer: SocketAddr::from(([127, 0, 0, 1], 50_000)),
        local: SocketAddr::from(([127, 0, 0, 1], 8554)),
        session: None,
        silenced: false,
    };
    let mut buf = BytesMut::from(rest);
    let mut out = Vec::new();
    loop {
        match parse_next(&mut buf) {
            Parsed::Incomplete => break,
            Parsed::Interleaved { .. } => {}
            Parsed::Request(_) if conn.silenced => {}
            Parsed::Request(req) => match conn.answer(&req) {
                Answer::Send(b) => out.push(b),
                Answer::Nothing => {}
                Answer::SendAndClose(b, _) => {
                    out.push(b);
                    break;
                }
            },
            Parsed::Bad { status, cseq, .. } => {
                out.push(Response::new(status).serialize(cseq.as_deref()));
                break;
            }
        }
    }
    out
}
