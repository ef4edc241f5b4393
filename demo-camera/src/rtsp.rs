//! The RTSP 1.0 server (RFC 2326): accept loop, request parsing, and the per-connection
//! session state machine (Init → Ready → Playing), with RTP interleaved on the RTSP
//! connection (`RTP/AVP/TCP;unicast;interleaved=0-1`).
//!
//! One task per connection, which owns at most one session. It reads the client's socket
//! concurrently with sending video, so keepalives (`GET_PARAMETER`/`SET_PARAMETER`/`OPTIONS`),
//! `TEARDOWN` and interleaved RTCP from the client are handled (the latter skipped) while
//! playing. Everything a client sends is size-bounded and parsed without panicking; a request
//! that cannot be parsed gets an error response and the connection is closed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use super::encoder::{EncodedFrame, EncoderShared, ViewerGuard};
use super::faults::{self, AnnouncedCodec, Audio, FaultState, Reply, SessionSlot};
use super::rtp::{ntp_time, Packetizer};

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

/// A parsed request.
#[derive(Debug)]
struct Request {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The session id from the `Session` header, without parameters.
    fn session_id(&self) -> Option<&str> {
        self.header("Session")
            .map(|v| v.split(';').next().unwrap_or("").trim())
    }
}

/// What [`parse_next`] found at the front of the buffer.
#[derive(Debug)]
enum Parsed {
    /// Need more bytes.
    Incomplete,
    /// An interleaved binary frame (e.g. RTCP receiver report) was consumed.
    Interleaved {
        channel: u8,
        len: usize,
    },
    Request(Request),
    /// The client sent something unacceptable; reply `status` and close.
    Bad {
        status: u16,
        cseq: Option<String>,
        why: &'static str,
    },
}

/// Finds the blank line ending a message head: returns (end of head, start of body).
fn find_head_end(b: &[u8]) -> Option<(usize, usize)> {
    b.iter().enumerate().find_map(|(i, &c)| {
        if c != b'\n' {
            return None;
        }
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(b'\n'), _) => Some((i, i + 2)),
            (Some(b'\r'), Some(b'\n')) => Some((i, i + 3)),
            _ => None,
        }
    })
}

/// Takes one message off the front of `buf`, if complete.
fn parse_next(buf: &mut BytesMut) -> Parsed {
    let blank = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    buf.advance(blank);
    let Some(&first) = buf.first() else {
        return Parsed::Incomplete;
    };
    if first == b'$' {
        if buf.len() < 4 {
            return Parsed::Incomplete;
        }
        let channel = buf[1];
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if buf.len() < 4 + len {
            return Parsed::Incomplete;
        }
        buf.advance(4 + len);
        return Parsed::Interleaved { channel, len };
    }
    let bad = |status, cseq, why| Parsed::Bad { status, cseq, why };
    let Some((head_end, body_start)) = find_head_end(&buf[..buf.len().min(MAX_HEAD)]) else {
        return if buf.len() >= MAX_HEAD {
            bad(400, None, "request head too large")
        } else {
            Parsed::Incomplete
        };
    };
    let Ok(head) = std::str::from_utf8(&buf[..head_end]) else {
        return bad(400, None, "request head is not UTF-8");
    };
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        // Field values never hold control characters (a bare CR among them): some values
        // (CSeq, Require) are echoed in the response, which must stay one response.
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return bad(400, None, "control character in a header");
        }
        if line.starts_with([' ', '\t']) {
            // Obsolete line folding: continues the previous header's value.
            match headers.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                None => return bad(400, None, "malformed header"),
            }
        }
        if headers.len() >= MAX_HEADERS {
            return bad(400, None, "too many headers");
        }
        let Some((name, value)) = line.split_once(':') else {
            return bad(400, None, "malformed header");
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let cseq = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("CSeq"))
        .map(|(_, v)| v.clone());
    let parts: Vec<&str> = request_line.split_ascii_whitespace().collect();
    let [method, uri, version] = parts[..] else {
        return bad(400, cseq, "malformed request line");
    };
    if version != "RTSP/1.0" {
        return if version.starts_with("RTSP/") {
            bad(505, cseq, "unsupported RTSP version")
        } else {
            bad(400, cseq, "not an RTSP request")
        };
    }
    let content_length = match headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
    {
        None => 0,
        Some((_, v)) => match v.parse::<usize>() {
            Ok(n) => n,
            Err(_) => return bad(400, cseq, "bad Content-Length"),
        },
    };
    if content_length > MAX_BODY {
        return bad(413, cseq, "request body too large");
    }
    let total = body_start + content_length;
    if buf.len() < total {
        return Parsed::Incomplete;
    }
    let method = method.to_owned();
    let uri = uri.to_owned();
    let msg = buf.split_to(total).freeze();
    Parsed::Request(Request {
        method,
        uri,
        headers,
        body: msg.slice(body_start..),
    })
}

/// Picks the first acceptable alternative of a `Transport` header: unicast
/// `RTP/AVP/TCP`, play mode. Returns its RTP interleaved channel (RTCP is the next one).
fn choose_transport(header: &str) -> Option<u8> {
    'specs: for spec in header.split(',') {
        let mut params = spec.split(';').map(str::trim);
        let proto = params.next().unwrap_or("");
        if !proto.eq_ignore_ascii_case("RTP/AVP/TCP") {
            continue;
        }
        let mut channel = 0u8;
        for p in params {
            let p = p.to_ascii_lowercase();
            if p == "multicast" {
                continue 'specs;
            } else if let Some(v) = p.strip_prefix("interleaved=") {
                let (a, b) = match v.split_once('-') {
                    Some((a, b)) => (a, Some(b)),
                    None => (v, None),
                };
                let Ok(a) = a.trim().parse::<u8>() else {
                    continue 'specs;
                };
                if a == u8::MAX || b.is_some_and(|b| b.trim().parse::<u8>().ok() != Some(a + 1)) {
                    continue 'specs;
                }
                channel = a;
            } else if let Some(m) = p.strip_prefix("mode=") {
                if m.trim_matches('"') != "play" {
                    continue 'specs;
                }
            }
        }
        return Some(channel);
    }
    None
}

/// Normalizes a request path for comparison: no trailing `/` except for the root.
fn normalize_path(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/"
    } else {
        t
    }
}

/// `base` joined with a relative segment.
fn join_path(base: &str, seg: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{seg}")
    } else {
        format!("{base}/{seg}")
    }
}

/// Constant-time comparison (credentials).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a request URI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// `*`
    Any,
    /// The presentation (`/demo`).
    Presentation,
    /// The video track (`/demo/trackID=0`).
    Track,
    /// The audio track (`/demo/trackID=1`), when a fault announces one.
    AudioTrack,
    /// Anything else.
    Unknown,
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        451 => "Parameter Not Understood",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        551 => "Option not supported",
        _ => "Error",
    }
}

/// A response under construction.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Option<(&'static str, Vec<u8>)>,
}

impl Response {
    fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn serialize(&self, cseq: Option<&str>) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut s = format!(
            "RTSP/1.0 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        if let Some(c) = cseq {
            let _ = write!(s, "CSeq: {c}\r\n");
        }
        let _ = write!(s, "Server: {SERVER}\r\n");
        for (n, v) in &self.headers {
            let _ = write!(s, "{n}: {v}\r\n");
        }
        match &self.body {
            Some((content_type, body)) => {
                let _ = write!(
                    s,
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let mut out = s.into_bytes();
                out.extend_from_slice(body);
                out
            }
            None => {
                s.push_str("\r\n");
                s.into_bytes()
            }
        }
    }
}

/// A playing session's link to the encoder.
struct Play {
    rx: broadcast::Receiver<Arc<EncodedFrame>>,
    _viewer: ViewerGuard,
    /// Skip access units until a keyframe captured at or after `start_rtp`.
    waiting_keyframe: bool,
    /// The camera clock when PLAY was answered.
    start_rtp: u32,
    next_sender_report: Instant,
    /// Access units sent since PLAY (for the hang-up fault).
    frames_sent: u32,
}

/// An RTSP session (created by SETUP, bound to its connection).
struct Session {
    id: String,
    /// Interleaved channel for the video's RTP, once set up; RTCP uses `channel + 1`.
    channel: Option<u8>,
    packetizer: Packetizer,
    /// Random per-session offset added to the camera's RTP clock (RFC 3550 section 5.1).
    ts_offset: u32,
    play: Option<Play>,
    /// The audio track's channel, when a fault announces audio and the client set it up.
    audio_channel: Option<u8>,
    audio_packetizer: Packetizer,
    /// Access units and RTP packets handed to this session (for the loss and corruption
    /// faults' "one in n").
    frames_seen: u64,
    packets_seen: u64,
    /// This session's place in the camera's session count.
    _slot: SessionSlot,
}

/// One client connection.
struct Conn {
    cfg: Arc<ServerConfig>,
    peer: SocketAddr,
    local: SocketAddr,
    session: Option<Session>,
    /// A `Silence` fault struck: requests are read and never answered.
    silenced: bool,
}

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

/// What [`Conn::answer`] decided to send.
enum Answer {
    Send(Vec<u8>),
    /// Nothing, and the connection stays open (a `Silence` fault).
    Nothing,
    /// These bytes (maybe none), then close the connection for the given reason.
    SendAndClose(Vec<u8>, &'static str),
}

impl Conn {
    /// Answers every complete request in `buf`. `Err` means close the connection.
    async fn handle_buffered(
        &mut self,
        buf: &mut BytesMut,
        wr: &mut OwnedWriteHalf,
    ) -> Result<(), String> {
        loop {
            match parse_next(buf) {
                Parsed::Incomplete => return Ok(()),
                Parsed::Interleaved { channel, len } => {
                    tracing::trace!(peer = %self.peer, channel, len, "demo camera: skipped interleaved data from client");
                }
                Parsed::Request(_) if self.silenced => {}
                Parsed::Request(req) => {
                    let bytes = match self.answer(&req) {
                        Answer::Send(b) => b,
                        Answer::Nothing => continue,
                        Answer::SendAndClose(b, why) => {
                            if !b.is_empty() {
                                let _ = write_all(wr, &b).await;
                            }
                            return Err(why.into());
                        }
                    };
                    write_all(wr, &bytes).await?;
                }
                Parsed::Bad { status, cseq, why } => {
                    let resp = Response::new(status);
                    let _ = write_all(wr, &resp.serialize(cseq.as_deref())).await;
                    return Err(format!("bad request ({why})"));
                }
            }
        }
    }

    /// What to send for a request: the served response, or what a fault makes of it.
    fn answer(&mut self, req: &Request) -> Answer {
        let cseq = req.header("CSeq");
        let fault = self.cfg.faults.with(|f| f.reply_for(&req.method));
        if let Some(reply) = fault {
            tracing::debug!(peer = %self.peer, method = %req.method, ?reply, "demo camera: fault");
        }
        match fault {
            None => {
                let resp = self.handle(req);
                tracing::debug!(
                    peer = %self.peer,
                    method = %req.method,
                    status = resp.status,
                    "demo camera: request"
                );
                Answer::Send(resp.serialize(cseq))
            }
            Some(Reply::Status(code)) => {
                let resp = if code == 401 {
                    Self::unauthorized()
                } else {
                    Response::new(code)
                };
                Answer::Send(resp.serialize(cseq))
            }
            Some(Reply::Garbage) => Answer::SendAndClose(GARBAGE.to_vec(), "fault: garbage"),
            Some(Reply::Truncated) => {
                let mut full = self.handle(req).serialize(cseq);
                let head = full
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(full.len());
                full.truncate(head / 2);
                Answer::SendAndClose(full, "fault: truncated response")
            }
            Some(Reply::Silence) => {
                self.silenced = true;
                Answer::Nothing
            }
            Some(Reply::Close) => Answer::SendAndClose(Vec::new(), "fault: closed without answer"),
        }
    }

    fn handle(&mut self, req: &Request) -> Response {
        if req.header("CSeq").is_none() {
            return Response::new(400);
        }
        // No option tags are supported (RFC 2326 section 12.32).
        if let Some(tags) = req.header("Require").or(req.header("Proxy-Require")) {
            return Response::new(551).header("Unsupported", tags);
        }
        match req.method.as_str() {
            "OPTIONS" => Response::new(200).header("Public", PUBLIC),
            "DESCRIBE" => self.describe(req),
            "SETUP" => self.setup(req),
            "PLAY" => self.play(req),
            "PAUSE" => self.pause(req),
            "TEARDOWN" => self.teardown(req),
            "GET_PARAMETER" | "SET_PARAMETER" => self.parameter(req),
            "ANNOUNCE" | "RECORD" | "REDIRECT" => Response::new(405).header("Allow", PUBLIC),
            _ => Response::new(501).header("Public", PUBLIC),
        }
    }

    /// What the request URI names; `None` if it cannot be parsed.
    fn target(&self, uri: &str) -> Option<Target> {
        if uri == "*" {
            return Some(Target::Any);
        }
        let parsed;
        let path = if let Ok(u) = url::Url::parse(uri) {
            parsed = u;
            parsed.path()
        } else if uri.starts_with('/') {
            uri.split(['?', '#']).next().unwrap_or(uri)
        } else {
            return None;
        };
        let path = normalize_path(path);
        let base = self.cfg.base_path.as_str();
        let audio = self.cfg.faults.with(|f| f.audio) != Audio::None;
        Some(if path == base {
            Target::Presentation
        } else if path == join_path(base, TRACK) {
            Target::Track
        } else if audio && path == join_path(base, AUDIO_TRACK) {
            Target::AudioTrack
        } else {
            Target::Unknown
        })
    }

    /// The absolute presentation URL, ending in `/`, as the client addressed us (without
    /// credentials): what `Content-Base` carries and relative controls resolve against.
    fn base_url(&self, uri: &str) -> String {
        let dir = join_path(&self.cfg.base_path, "");
        if let Ok(mut u) = url::Url::parse(uri) {
            if u.has_host() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.set_fragment(None);
                u.set_path(&dir);
                return u.to_string();
            }
        }
        format!("rtsp://{}{dir}", self.local)
    }

    fn authorized(&self, req: &Request) -> bool {
        let Some((user, pass)) = &self.cfg.credentials else {
            return true;
        };
        let Some((scheme, value)) = req
            .header("Authorization")
            .and_then(|h| h.trim().split_once(' '))
        else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("Basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
            return false;
        };
        ct_eq(&decoded, format!("{user}:{pass}").as_bytes())
    }

    fn unauthorized() -> Response {
        Response::new(401).header("WWW-Authenticate", format!("Basic realm=\"{REALM}\""))
    }

    fn session_header(s: &Session) -> String {
        format!("{};timeout={}", s.id, SESSION_TIMEOUT.as_secs())
    }

    /// The session named by the request, or the error response.
    fn session_for(&mut self, req: &Request) -> Result<&mut Session, Response> {
        match (self.session.as_mut(), req.session_id()) {
            (Some(s), Some(id)) if s.id == id => Ok(s),
            (None, None) => Err(Response::new(455)),
            _ => Err(Response::new(454)),
        }
    }

    fn sdp(&self) -> String {
        let (codec, audio) = self.cfg.faults.with(|f| (f.announce_codec, f.audio));
        let p = self.cfg.encoder.params().unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD;
        let profile_level_id = p
            .sps
            .get(1..4)
            .map(|b| format!("{:02X}{:02X}{:02X}", b[0], b[1], b[2]))
            .unwrap_or_else(|| "42C01F".into());
        let codec = match codec {
            AnnouncedCodec::H264 => format!(
                "a=rtpmap:{PAYLOAD_TYPE} H264/90000\r\n\
                 a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={profile_level_id};sprop-parameter-sets={sps},{pps}\r\n",
                sps = b64.encode(&p.sps),
                pps = b64.encode(&p.pps),
            ),
            AnnouncedCodec::H265 => format!("a=rtpmap:{PAYLOAD_TYPE} H265/90000\r\n"),
        };
        // The audio track comes first, so the video is not stream 0: a client must pick
        // the video track by its media type, not by position.
        let audio = match audio {
            Audio::None => String::new(),
            Audio::Announce | Audio::AnnounceAndSend => format!(
                "m=audio 0 RTP/AVP {AUDIO_PAYLOAD_TYPE}\r\n\
                 a=rtpmap:{AUDIO_PAYLOAD_TYPE} PCMU/8000\r\n\
                 a=control:{AUDIO_TRACK}\r\n"
            ),
        };
        let (family, addr, any) = match self.local.ip() {
            IpAddr::V4(a) => ("IP4", a.to_string(), "0.0.0.0"),
            IpAddr::V6(a) => ("IP6", a.to_string(), "::"),
        };
        let session_id = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        format!(
            "v=0\r\n\
             o=- {session_id} 1 IN {family} {addr}\r\n\
             s=camkit demo camera\r\n\
             c=IN {family} {any}\r\n\
             t=0 0\r\n\
             a=tool:{SERVER}\r\n\
             a=range:npt=0-\r\n\
             a=control:*\r\n\
             {audio}\
             m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n\
             b=AS:{kbps}\r\n\
             {codec}\
             a=framerate:{fps}\r\n\
             a=control:{TRACK}\r\n",
            kbps = self.cfg.bitrate_bps.div_ceil(1000),
            fps = self.cfg.fps,
        )
    }

    fn describe(&mut self, req: &Request) -> Response {
        if !self.authorized(req) {
            return Self::unauthorized();
        }
        match self.target(&req.uri) {
            None => return Response::new(400),
            Some(Target::Presentation) => {}
            Some(_) => return Response::new(404),
        }
        let mut resp = Response::new(200).header("Content-Base", self.base_url(&req.uri));
        resp.body = Some(("application/sdp", self.sdp().into_bytes()));
        resp
    }

    fn setup(&mut self, req: &Request) -> Response {
        if !self.authorized(req) {
            return Self::unauthorized();
        }
        let audio = match self.target(&req.uri) {
            None => return Response::new(400),
            Some(Target::Track | Target::Presentation) => false,
            Some(Target::AudioTrack) => true,
            Some(_) => return Response::new(404),
        };
        let Some(transport) = req.header("Transport") else {
            return Response::new(400);
        };
        let Some(channel) = choose_transport(transport) else {
            tracing::debug!(peer = %self.peer, transport, "demo camera: unsupported transport");
            return Response::new(461);
        };
        let session = match (self.session.as_mut(), req.session_id()) {
            (Some(s), Some(id)) if s.id != id => return Response::new(454),
            (None, Some(_)) => return Response::new(454),
            (Some(s), _) if s.play.is_some() => return Response::new(455),
            (Some(s), _) => s,
            (None, None) => {
                let Some(slot) = self.cfg.faults.try_open_session() else {
                    tracing::debug!(peer = %self.peer, "demo camera: session limit reached (fault)");
                    return Response::new(453);
                };
                let id = format!("{:016X}", fastrand::u64(..));
                tracing::debug!(peer = %self.peer, session = %id, "demo camera: session created");
                self.session.insert(Session {
                    id,
                    channel: None,
                    packetizer: Packetizer::new(fastrand::u32(..), PAYLOAD_TYPE, fastrand::u16(..)),
                    ts_offset: fastrand::u32(..),
                    play: None,
                    audio_channel: None,
                    audio_packetizer: Packetizer::new(
                        fastrand::u32(..),
                        AUDIO_PAYLOAD_TYPE,
                        fastrand::u16(..),
                    ),
                    frames_seen: 0,
                    packets_seen: 0,
                    _slot: slot,
                })
            }
        };
        let ssrc = if audio {
            session.audio_channel = Some(channel);
            session.audio_packetizer.ssrc()
        } else {
            session.channel = Some(channel);
            session.packetizer.ssrc()
        };
        Response::new(200)
            .header(
                "Transport",
                format!(
                    "RTP/AVP/TCP;unicast;interleaved={}-{};ssrc={ssrc:08X}",
                    channel,
                    channel + 1,
                ),
            )
            .header("Session", Self::session_header(session))
    }

    fn play(&mut self, req: &Request) -> Response {
        if !self.authorized(req) {
            return Self::unauthorized();
        }
        match self.target(&req.uri) {
            None => return Response::new(400),
            Some(Target::Unknown) => return Response::new(404),
            Some(_) => {}
        }
        let track_url = format!("{}{TRACK}", self.base_url(&req.uri));
        let encoder = Arc::clone(&self.cfg.encoder);
        let peer = self.peer;
        let s = match self.session_for(req) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let play = s.play.get_or_insert_with(|| {
            // Read the clock before asking for the IDR, so the IDR is never "before PLAY".
            let start_rtp = encoder.rtp_now();
            let (rx, viewer) = encoder.start_viewer();
            tracing::info!(%peer, session = %s.id, "demo camera: client playing");
            Play {
                rx,
                _viewer: viewer,
                waiting_keyframe: true,
                start_rtp,
                next_sender_report: Instant::now(),
                frames_sent: 0,
            }
        });
        let rtptime = play.start_rtp.wrapping_add(s.ts_offset);
        Response::new(200)
            .header("Session", Self::session_header(s))
            .header("Range", "npt=0.000-")
            .header(
                "RTP-Info",
                format!(
                    "url={track_url};seq={};rtptime={rtptime}",
                    s.packetizer.next_seq()
                ),
            )
    }

    fn pause(&mut self, req: &Request) -> Response {
        let s = match self.session_for(req) {
            Ok(s) => s,
            Err(r) => return r,
        };
        s.play = None;
        Response::new(200).header("Session", Self::session_header(s))
    }

    fn teardown(&mut self, req: &Request) -> Response {
        if let Err(r) = self.session_for(req) {
            return r;
        }
        if let Some(s) = self.session.take() {
            tracing::debug!(peer = %self.peer, session = %s.id, "demo camera: session torn down");
        }
        Response::new(200)
    }

    fn parameter(&mut self, req: &Request) -> Response {
        let mut resp = Response::new(200);
        if req.session_id().is_some() {
            match self.session_for(req) {
                Ok(s) => resp = resp.header("Session", Self::session_header(s)),
                Err(r) => return r,
            }
        }
        if !req.body.iter().all(u8::is_ascii_whitespace) {
            // No parameters exist; an empty request is a keepalive.
            resp.status = 451;
        }
        resp
    }

    /// Sends one access unit (and, now and then, an RTCP sender report) to a playing client.
    async fn send_frame(
        &mut self,
        frame: &EncodedFrame,
        wr: &mut OwnedWriteHalf,
    ) -> Result<(), String> {
        let Some(s) = self.session.as_mut() else {
            return Ok(());
        };
        let Some(play) = s.play.as_mut() else {
            return Ok(());
        };
        if play.waiting_keyframe {
            let before_play = (frame.rtp_time.wrapping_sub(play.start_rtp) as i32) < 0;
            if !frame.keyframe || before_play {
                return Ok(());
            }
            play.waiting_keyframe = false;
        }
        let (hang_up, drop_one_in, corrupt_one_in, audio) = self.cfg.faults.with(|f| {
            (
                f.hang_up_after_frames,
                f.drop_one_packet_in,
                f.corrupt_one_frame_in,
                f.audio,
            )
        });
        if hang_up.is_some_and(|n| play.frames_sent >= n) {
            return Err("fault: hung up mid-stream".into());
        }
        play.frames_sent = play.frames_sent.saturating_add(1);
        s.frames_seen += 1;
        let one_in = |n: Option<u32>, count: u64| {
            n.is_some_and(|n| n > 0 && count.is_multiple_of(u64::from(n)))
        };
        let corrupted;
        let nals: &[Bytes] = if one_in(corrupt_one_in, s.frames_seen) {
            corrupted = faults::corrupt_slices(&frame.nals, frame.rtp_time);
            &corrupted
        } else {
            &frame.nals
        };
        let size: usize = nals.iter().map(|n| n.len() + 32).sum();
        let mut out = BytesMut::with_capacity(size + 64);
        let Some(channel) = s.channel else {
            // Only audio was set up.
            return self.send_audio(frame, audio, wr).await;
        };
        let mut packets_seen = s.packets_seen;
        s.packetizer
            .packetize(nals, frame.rtp_time.wrapping_add(s.ts_offset), |pkt| {
                packets_seen += 1;
                if one_in(drop_one_in, packets_seen) {
                    return;
                }
                out.put_u8(b'$');
                out.put_u8(channel);
                out.put_u16(pkt.len() as u16);
                out.put_slice(pkt);
            });
        s.packets_seen = packets_seen;
        let now = Instant::now();
        if now >= play.next_sender_report {
            play.next_sender_report = now + SR_INTERVAL;
            let rtp_now = self.cfg.encoder.rtp_now().wrapping_add(s.ts_offset);
            let sr = s
                .packetizer
                .sender_report(ntp_time(SystemTime::now()), rtp_now, CNAME);
            out.put_u8(b'$');
            out.put_u8(channel + 1);
            out.put_u16(sr.len() as u16);
            out.put_slice(&sr);
        }
        write_all(wr, &out).await?;
        self.send_audio(frame, audio, wr).await
    }

    /// With the `AnnounceAndSend` audio fault: a video frame's worth of PCMU silence, on the
    /// audio channel if set up, else on the two channels after the video's.
    async fn send_audio(
        &mut self,
        frame: &EncodedFrame,
        audio: Audio,
        wr: &mut OwnedWriteHalf,
    ) -> Result<(), String> {
        let Some(s) = self.session.as_mut() else {
            return Ok(());
        };
        if audio != Audio::AnnounceAndSend {
            return Ok(());
        }
        let channel = match (s.audio_channel, s.channel) {
            (Some(a), _) => a,
            (None, Some(v)) => match v.checked_add(2) {
                Some(c) if c < u8::MAX => c,
                _ => return Ok(()),
            },
            (None, None) => return Ok(()),
        };
        // 8 kHz samples per video frame, one byte each (0xFF is µ-law silence), kept under
        // the RTP payload limit.
        let samples = (8000 / self.cfg.fps.max(1)).min(1000) as usize;
        let payload = vec![0xFFu8; samples];
        let ts = (u64::from(frame.rtp_time) * 8 / 90) as u32;
        let mut out = BytesMut::with_capacity(samples + 32);
        s.audio_packetizer
            .packetize(&[payload], ts.wrapping_add(s.ts_offset), |pkt| {
                out.put_u8(b'$');
                out.put_u8(channel);
                out.put_u16(pkt.len() as u16);
                out.put_slice(pkt);
            });
        write_all(wr, &out).await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> (Parsed, BytesMut) {
        let mut b = BytesMut::from(s);
        let p = parse_next(&mut b);
        (p, b)
    }

    #[test]
    fn parses_requests_and_skips_interleaved() {
        let mut b = BytesMut::from(
            &b"\r\n$\x01\x00\x03abcOPTIONS * RTSP/1.0\r\nCSeq: 7\r\nX: a\r\n  b\r\n\r\nSET_PARAMETER rtsp://h/demo RTSP/1.0\nCSeq: 8\nContent-Length: 3\n\nxyzGET"[..],
        );
        assert!(matches!(
            parse_next(&mut b),
            Parsed::Interleaved { channel: 1, len: 3 }
        ));
        let Parsed::Request(r) = parse_next(&mut b) else {
            panic!()
        };
        assert_eq!((r.method.as_str(), r.uri.as_str()), ("OPTIONS", "*"));
        assert_eq!(r.header("cseq"), Some("7"));
        assert_eq!(r.header("X"), Some("a b"));
        let Parsed::Request(r) = parse_next(&mut b) else {
            panic!()
        };
        assert_eq!(r.method, "SET_PARAMETER");
        assert_eq!(&r.body[..], b"xyz");
        assert!(matches!(parse_next(&mut b), Parsed::Incomplete));
        assert_eq!(&b[..], b"GET");
    }

    #[test]
    fn incomplete_and_bad_input() {
        assert!(matches!(parse(b"$\x00\x10").0, Parsed::Incomplete));
        assert!(matches!(parse(b"$\x00\x00\x05abc").0, Parsed::Incomplete));
        assert!(matches!(
            parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n").0,
            Parsed::Incomplete
        ));
        assert!(matches!(
            parse(b"PLAY x RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 5\r\n\r\nab").0,
            Parsed::Incomplete
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n\r\n").0,
            Parsed::Bad { status: 400, .. }
        ));
        assert!(matches!(
            parse(b"OPTIONS * RTSP/2.0\r\nCSeq: 3\r\n\r\n").0,
            Parsed::Bad { status: 505, cseq: Some(ref c), .. } if c == "3"
        ));
        assert!(matches!(
            parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 999999\r\n\r\n").0,
            Parsed::Bad { status: 413, .. }
        ));
        assert!(matches!(
            parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nContent-Length: -1\r\n\r\n").0,
            Parsed::Bad { status: 400, .. }
        ));
        assert!(matches!(
            parse(b"OPTIONS * RTSP/1.0\r\nno colon\r\n\r\n").0,
            Parsed::Bad { status: 400, .. }
        ));
        // A bare CR in a value would be echoed (CSeq) and split the response (found by
        // the rtsp_request fuzz target).
        assert!(matches!(
            parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\x7f\r\n\r\n").0,
            Parsed::Bad {
                status: 400,
                cseq: None,
                ..
            }
        ));
        assert!(matches!(
            parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\x00\r\n\r\n").0,
            Parsed::Bad { status: 400, .. }
        ));
        assert!(matches!(
            parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: a\r\n b\rc\r\n\r\n").0,
            Parsed::Bad { status: 400, .. }
        ));
        let Parsed::Request(r) = parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: a\tb\r\n\r\n").0
        else {
            panic!("a tab is fine")
        };
        assert_eq!(r.header("X"), Some("a\tb"));
        assert!(matches!(
            parse(b"\xff\xfe * RTSP/1.0\r\n\r\n").0,
            Parsed::Bad { status: 400, .. }
        ));
        let huge = vec![b'A'; MAX_HEAD + 10];
        assert!(matches!(parse(&huge).0, Parsed::Bad { status: 400, .. }));
        let many: String = std::iter::once("OPTIONS * RTSP/1.0\r\n".to_owned())
            .chain((0..100).map(|i| format!("H{i}: v\r\n")))
            .chain(std::iter::once("\r\n".to_owned()))
            .collect();
        assert!(matches!(
            parse(many.as_bytes()).0,
            Parsed::Bad { status: 400, .. }
        ));
        // Arbitrary bytes never panic.
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..2000 {
            let len = rng.usize(0..64);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if rng.bool() {
                bytes.extend_from_slice(b"\r\n\r\n");
            }
            let mut b = BytesMut::from(&bytes[..]);
            for _ in 0..4 {
                if matches!(parse_next(&mut b), Parsed::Incomplete | Parsed::Bad { .. }) {
                    break;
                }
            }
        }
    }

    #[test]
    fn transports() {
        assert_eq!(
            choose_transport("RTP/AVP/TCP;unicast;interleaved=0-1"),
            Some(0)
        );
        assert_eq!(
            choose_transport("RTP/AVP/TCP;unicast;interleaved=4-5;mode=\"PLAY\""),
            Some(4)
        );
        assert_eq!(choose_transport("rtp/avp/tcp;interleaved=2"), Some(2));
        assert_eq!(choose_transport("RTP/AVP/TCP;unicast"), Some(0));
        assert_eq!(
            choose_transport("RTP/AVP;unicast;client_port=5000-5001"),
            None
        );
        assert_eq!(
            choose_transport("RTP/AVP/UDP;unicast;client_port=5000-5001"),
            None
        );
        assert_eq!(
            choose_transport(
                "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=0-1"
            ),
            Some(0)
        );
        assert_eq!(choose_transport("RTP/AVP/TCP;multicast"), None);
        assert_eq!(choose_transport("RTP/AVP/TCP;interleaved=0-2"), None);
        assert_eq!(choose_transport("RTP/AVP/TCP;interleaved=255"), None);
        assert_eq!(choose_transport("RTP/AVP/TCP;interleaved=x"), None);
        assert_eq!(choose_transport("RTP/AVP/TCP;mode=record"), None);
        assert_eq!(choose_transport(""), None);
    }

    #[test]
    fn response_format() {
        let mut r = Response::new(200).header("Public", PUBLIC);
        r.body = Some(("application/sdp", b"v=0\r\n".to_vec()));
        let s = String::from_utf8(r.serialize(Some("5"))).unwrap();
        assert!(s.starts_with("RTSP/1.0 200 OK\r\nCSeq: 5\r\n"), "{s}");
        assert!(s.contains("\r\nContent-Length: 5\r\n\r\nv=0\r\n"), "{s}");
        let s = String::from_utf8(Response::new(461).serialize(None)).unwrap();
        assert!(
            s.starts_with("RTSP/1.0 461 Unsupported Transport\r\n"),
            "{s}"
        );
        assert!(s.ends_with("\r\n\r\n"));
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_path("/demo/"), "/demo");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path(""), "/");
        assert_eq!(join_path("/demo", TRACK), "/demo/trackID=0");
        assert_eq!(join_path("/", TRACK), "/trackID=0");
        assert!(ct_eq(b"a:b", b"a:b"));
        assert!(!ct_eq(b"a:b", b"a:c"));
        assert!(!ct_eq(b"a:b", b"a:bc"));
    }
}
