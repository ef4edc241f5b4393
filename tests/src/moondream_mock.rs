//! A Moondream API on loopback, in both flavours, that checks every request it gets.
//!
//! * Cloud ([`Flavour::Cloud`]): requires `X-Moondream-Auth: <key>` (anything else gets
//!   `401 {"error": "Unauthorized"}`), answers with a `request_id`, streams
//!   `data: {"chunk": "…", "completed": false}` events and puts the last piece in the
//!   `{"chunk": "…", "completed": true}` event.
//! * Moondream Station ([`Flavour::Station`]): no auth, answers carry `_stats` and no
//!   `request_id`, fails with `200 {"error": "…"}`, streams `{"chunk": "…"}` events, then
//!   `{"stats": {…}}`, then `{"completed": true}`.
//!
//! Every request is checked: `POST /v1/{query,caption,detect,point}`, a JSON body with
//! exactly the fields of that call and the right types, and an `image_url` that is a
//! `data:image/jpeg;base64,` URL of a decodable JPEG whose long side is at most 768 px.
//! A request that fails a check gets `400` and is listed in [`MoondreamMock::violations`];
//! every request is kept ([`MoondreamMock::requests`]), with its decoded JPEG, for the test
//! to look at. Streamed answers are sent in HTTP chunks that split events (and UTF-8
//! characters) in the middle, as networks do.
//!
//! Replies are scripted: [`MoondreamMock::push`] queues replies for the next requests, in
//! order; when the queue is empty the default reply ([`MoondreamMock::set_default`])
//! answers. Plain `std` threads, so it works from any test.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// The longest side, in pixels, of the pictures the mock accepts (what Moondream's clients
/// send).
pub const MAX_SIDE: u32 = 768;

/// The box every `detect` answer holds: `(x_min, y_min, x_max, y_max)`.
pub const DETECT_BOX: (f64, f64, f64, f64) = (0.125, 0.25, 0.5, 0.75);

/// The point every `point` answer holds: `(x, y)`.
pub const POINT: (f64, f64) = (0.5, 0.25);

/// Which Moondream the mock imitates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// The cloud API, accepting only this key.
    Cloud {
        /// The one key accepted in `X-Moondream-Auth`.
        api_key: String,
    },
    /// A local Moondream Station.
    Station,
}

/// What the mock answers to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A success: this text as the `answer` or `caption` (streamed in word-sized pieces
    /// when the request asked `stream: true`); `detect` and `point` answer [`DETECT_BOX`]
    /// and [`POINT`].
    Answer(String),
    /// A success streamed in exactly these pieces (their concatenation when the request
    /// did not ask to stream).
    Stream(Vec<String>),
    /// `429 Too Many Requests`, with this `Retry-After` value if any.
    TooManyRequests(Option<String>),
    /// This HTTP status with `{"error": message}`.
    Status(u16, String),
    /// Moondream Station's failure: `200 OK` with `{"error": message}`.
    StationError(String),
    /// `307 Temporary Redirect` to this URL (a client holding a key must not follow it).
    Redirect(String),
    /// Read the request and never answer (the connection stays open until the mock is
    /// dropped).
    Hang,
}

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// `/query`, `/caption`, `/detect` or `/point` (without the `/v1` prefix).
    pub path: String,
    /// The `X-Moondream-Auth` header, if sent.
    pub auth: Option<String>,
    /// The JSON body with `image_url` replaced by `"<jpeg>"`.
    pub body: Value,
    /// The JPEG from `image_url` (empty when the request had none).
    pub jpeg: Vec<u8>,
    /// That JPEG's width and height.
    pub size: (u32, u32),
    /// When the request had been read completely.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    default: Option<Reply>,
    requests: Vec<RecordedRequest>,
    violations: Vec<String>,
    /// Connections answered with [`Reply::Hang`], kept open.
    hung: Vec<TcpStream>,
}

/// The mock server; stops when dropped.
pub struct MoondreamMock {
    addr: SocketAddr,
    flavour: Flavour,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MoondreamMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoondreamMock")
            .field("addr", &self.addr)
            .field("flavour", &self.flavour)
            .finish()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking connection thread must not take the whole mock down with it.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl MoondreamMock {
    /// Binds 127.0.0.1 on a free port and serves. The default reply is
    /// `Reply::Answer("mock answer")`.
    ///
    /// # Panics
    ///
    /// If no local port can be bound or no thread spawned.
    pub fn start(flavour: Flavour) -> MoondreamMock {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let addr = listener.local_addr().expect("bound address");
        let state = Arc::new(Mutex::new(State {
            default: Some(Reply::Answer("mock answer".into())),
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let ids = Arc::new(AtomicU64::new(1));
        let thread = {
            let (state, stop, flavour) = (state.clone(), stop.clone(), flavour.clone());
            std::thread::Builder::new()
                .name("moondream-mock".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let (state, flavour, ids) = (state.clone(), flavour.clone(), ids.clone());
                        let _ = std::thread::Builder::new()
                            .name("moondream-mock-conn".into())
                            .spawn(move || {
                                let _ = serve(conn, &state, &flavour, &ids);
                            });
                    }
                })
                .expect("spawn the mock's thread")
        };
        MoondreamMock {
            addr,
            flavour,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/v1`, the base URL to configure the client with.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a reply for the next request not yet answered by an earlier one.
    pub fn push(&self, reply: Reply) {
        lock(&self.state).script.push_back(reply);
    }

    /// The reply used when the queue is empty.
    pub fn set_default(&self, reply: Reply) {
        lock(&self.state).default = Some(reply);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Every check a request failed so far (empty when all requests were right).
    pub fn violations(&self) -> Vec<String> {
        lock(&self.state).violations.clone()
    }
}

impl Drop for MoondreamMock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let woke = TcpStream::connect(self.addr).is_ok();
        if let Some(t) = self.thread.take() {
            if woke {
                let _ = t.join();
            }
        }
        lock(&self.state).hung.clear();
    }
}

/// A request as read off the wire.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(conn: &TcpStream) -> io::Result<Request> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "headers cut"));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Checks a request; returns the recorded form and the problems found.
fn check(req: &Request) -> (RecordedRequest, Vec<String>) {
    let mut problems = Vec::new();
    let path = req.path.strip_prefix("/v1").unwrap_or("").to_owned();
    if req.method != "POST" {
        problems.push(format!("method {} instead of POST", req.method));
    }
    let fields: &[(&str, &str)] = match path.as_str() {
        "/query" => &[("image_url", "s"), ("question", "s"), ("stream", "b")],
        "/caption" => &[("image_url", "s"), ("length", "s"), ("stream", "b")],
        "/detect" | "/point" => &[("image_url", "s"), ("object", "s")],
        _ => {
            problems.push(format!("unknown path {:?}", req.path));
            &[]
        }
    };
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        problems.push(format!(
            "content-type {:?} is not application/json",
            req.header("content-type")
        ));
    }
    let mut body: Value = serde_json::from_slice(&req.body).unwrap_or_else(|e| {
        problems.push(format!("body is not JSON: {e}"));
        Value::Null
    });
    let mut jpeg = Vec::new();
    let mut size = (0, 0);
    if let Some(obj) = body.as_object_mut() {
        for (name, ty) in fields {
            match (obj.get(*name), *ty) {
                (Some(Value::String(s)), "s") if !s.trim().is_empty() => {}
                (Some(Value::Bool(_)), "b") => {}
                (other, _) => problems.push(format!("field {name}: {other:?}")),
            }
        }
        for k in obj.keys() {
            if !fields.iter().any(|(n, _)| n == k) {
                problems.push(format!("unexpected field {k:?}"));
            }
        }
        if let Some(Value::String(url)) = obj.get("length") {
            if !["short", "normal", "long"].contains(&url.as_str()) {
                problems.push(format!("length {url:?}"));
            }
        }
        if let Some(Value::String(url)) = obj.get("image_url") {
            match image(url) {
                Ok((bytes, w, h)) => {
                    if w.max(h) > MAX_SIDE {
                        problems.push(format!("picture is {w}x{h}: long side over {MAX_SIDE}"));
                    }
                    jpeg = bytes;
                    size = (w, h);
                }
                Err(e) => problems.push(format!("image_url: {e}")),
            }
            obj.insert("image_url".into(), Value::String("<jpeg>".into()));
        }
    } else {
        problems.push("body is not a JSON object".into());
    }
    (
        RecordedRequest {
            path,
            auth: req.header("x-moondream-auth").map(str::to_owned),
            body,
            jpeg,
            size,
            at: Instant::now(),
        },
        problems,
    )
}

fn image(url: &str) -> Result<(Vec<u8>, u32, u32), String> {
    let b64 = url
        .strip_prefix("data:image/jpeg;base64,")
        .ok_or("not a data:image/jpeg;base64, URL")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("bad base64: {e}"))?;
    let img = turbojpeg::decompress(&bytes, turbojpeg::PixelFormat::RGB)
        .map_err(|e| format!("not a decodable JPEG: {e}"))?;
    Ok((bytes, img.width as u32, img.height as u32))
}

fn serve(
    mut conn: TcpStream,
    state: &Mutex<State>,
    flavour: &Flavour,
    ids: &AtomicU64,
) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = read_request(&conn)?;
    let (rec, problems) = check(&req);
    let stream = rec.body.get("stream") == Some(&Value::Bool(true));
    let path = rec.path.clone();
    let authorized = match flavour {
        Flavour::Cloud { api_key } => rec.auth.as_deref() == Some(api_key.as_str()),
        Flavour::Station => true,
    };
    let reply = {
        let mut st = lock(state);
        st.requests.push(rec);
        if !problems.is_empty() {
            st.violations.extend(problems.iter().cloned());
            None
        } else if !authorized {
            Some(Reply::Status(401, "Unauthorized".into()))
        } else {
            st.script.pop_front().or_else(|| st.default.clone())
        }
    };
    let Some(reply) = reply else {
        return respond(
            &mut conn,
            400,
            &[],
            &json!({"error": format!("mock: {}", problems.join("; "))}),
        );
    };
    let cloud = matches!(flavour, Flavour::Cloud { .. });
    let id = format!("req-{}", ids.fetch_add(1, Ordering::Relaxed));
    match reply {
        Reply::Hang => {
            lock(state).hung.push(conn);
            Ok(())
        }
        Reply::TooManyRequests(after) => {
            let headers: Vec<(&str, &str)> = after
                .as_deref()
                .map(|a| vec![("Retry-After", a)])
                .unwrap_or_default();
            respond(
                &mut conn,
                429,
                &headers,
                &json!({"error": "Too many requests"}),
            )
        }
        Reply::Status(status, msg) => respond(&mut conn, status, &[], &json!({"error": msg})),
        Reply::Redirect(to) => respond(
            &mut conn,
            307,
            &[("Location", to.as_str())],
            &json!({"error": "moved"}),
        ),
        Reply::StationError(msg) => respond(&mut conn, 200, &[], &json!({"error": msg})),
        Reply::Answer(text) if stream => {
            let pieces = text
                .split_inclusive(' ')
                .map(str::to_owned)
                .collect::<Vec<_>>();
            stream_answer(&mut conn, cloud, &pieces)
        }
        Reply::Stream(pieces) if stream => stream_answer(&mut conn, cloud, &pieces),
        Reply::Answer(text) => respond(&mut conn, 200, &[], &answer(&path, &text, cloud, &id)),
        Reply::Stream(pieces) => respond(
            &mut conn,
            200,
            &[],
            &answer(&path, &pieces.concat(), cloud, &id),
        ),
    }
}

fn answer(path: &str, text: &str, cloud: bool, id: &str) -> Value {
    let (x0, y0, x1, y1) = DETECT_BOX;
    let mut v = match path {
        "/query" => json!({"answer": text}),
        "/caption" => json!({"caption": text}),
        "/detect" => json!({"objects": [{"x_min": x0, "y_min": y0, "x_max": x1, "y_max": y1}]}),
        _ => json!({"points": [{"x": POINT.0, "y": POINT.1}]}),
    };
    if cloud {
        v["request_id"] = json!(id);
    } else {
        v["_stats"] = json!({"tokens": 3, "duration": 0.1, "tokens_per_sec": 30.0});
    }
    v
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        307 => "Temporary Redirect",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &Value,
) -> io::Result<()> {
    let body = body.to_string();
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()
}

/// Streams `pieces` as server-sent events in the flavour's format, each event split in two
/// HTTP chunks at an awkward place.
fn stream_answer(conn: &mut TcpStream, cloud: bool, pieces: &[String]) -> io::Result<()> {
    conn.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    )?;
    let mut events = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let last = i + 1 == pieces.len();
        let ev = if cloud {
            json!({"chunk": p, "completed": last})
        } else {
            json!({"chunk": p})
        };
        events.push(format!("data: {ev}\n\n"));
    }
    if !cloud {
        events.push(format!(
            "data: {}\n\n",
            json!({"stats": {"tokens": pieces.len(), "duration": 0.1}})
        ));
    }
    if !cloud || pieces.is_empty() {
        events.push(format!("data: {}\n\n", json!({"completed": true})));
    }
    for ev in events {
        let b = ev.as_bytes();
        let cut = b.len() / 2 + 1;
        for part in [&b[..cut], &b[cut..]] {
            write!(conn, "{:x}\r\n", part.len())?;
            conn.write_all(part)?;
            conn.write_all(b"\r\n")?;
            conn.flush()?;
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    conn.write_all(b"0\r\n\r\n")?;
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(addr: SocketAddr, path: &str, headers: &str, body: &str) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(
            c,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    /// The body of a chunked response, without the chunk framing.
    fn dechunk(response: &str) -> String {
        let (_, mut rest) = response.split_once("\r\n\r\n").unwrap();
        let mut body = String::new();
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(size, 16).unwrap();
            if n == 0 {
                return body;
            }
            body.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
    }

    fn tiny_jpeg_url() -> String {
        let pixels = vec![128u8; 16 * 16 * 3];
        let img = turbojpeg::Image {
            pixels: &pixels[..],
            width: 16,
            pitch: 48,
            height: 16,
            format: turbojpeg::PixelFormat::RGB,
        };
        let jpeg = turbojpeg::compress(img, 90, turbojpeg::Subsamp::Sub2x2).unwrap();
        format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&jpeg[..])
        )
    }

    #[test]
    fn checks_requests_and_auth() {
        let mock = MoondreamMock::start(Flavour::Cloud {
            api_key: "k1".into(),
        });
        let good = json!({"image_url": tiny_jpeg_url(), "question": "q?", "stream": false});
        let r = post(
            mock.addr(),
            "/v1/query",
            "X-Moondream-Auth: k1\r\n",
            &good.to_string(),
        );
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains("\"answer\":\"mock answer\""), "{r}");
        assert!(r.contains("request_id"), "{r}");
        let r = post(mock.addr(), "/v1/query", "", &good.to_string());
        assert!(r.starts_with("HTTP/1.1 401"), "{r}");
        assert!(mock.violations().is_empty());
        let bad = json!({"image_url": "data:image/png;base64,AAAA", "question": "q", "extra": 1});
        let r = post(
            mock.addr(),
            "/v1/query",
            "X-Moondream-Auth: k1\r\n",
            &bad.to_string(),
        );
        assert!(r.starts_with("HTTP/1.1 400"), "{r}");
        let v = mock.violations();
        assert!(v.iter().any(|p| p.contains("image_url")), "{v:?}");
        assert!(v.iter().any(|p| p.contains("extra")), "{v:?}");
        assert!(v.iter().any(|p| p.contains("stream")), "{v:?}");
        assert_eq!(mock.requests().len(), 3);
        assert_eq!(mock.requests()[0].size, (16, 16));
    }

    #[test]
    fn station_streams_and_fails_with_200() {
        let mock = MoondreamMock::start(Flavour::Station);
        mock.push(Reply::Stream(vec!["A ".into(), "cat".into()]));
        mock.push(Reply::StationError("model not loaded".into()));
        let body = json!({"image_url": tiny_jpeg_url(), "question": "q?", "stream": true});
        let r = post(mock.addr(), "/v1/query", "", &body.to_string());
        assert!(r.contains("text/event-stream"), "{r}");
        let events = dechunk(&r);
        let events: Vec<&str> = events.split("\n\n").collect();
        assert_eq!(
            events[..2],
            ["data: {\"chunk\":\"A \"}", "data: {\"chunk\":\"cat\"}"]
        );
        assert!(events[2].starts_with("data: {\"stats\":"), "{events:?}");
        assert_eq!(events[3..], ["data: {\"completed\":true}", ""]);
        let r = post(mock.addr(), "/v1/query", "", &body.to_string());
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains("model not loaded"), "{r}");
    }
}
