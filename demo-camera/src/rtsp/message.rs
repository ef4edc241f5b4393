//! RTSP messages: parsing what a client sends (size-bounded, never panicking) and
//! writing responses.

use bytes::{Buf, Bytes, BytesMut};

use super::{MAX_BODY, MAX_HEAD, MAX_HEADERS, SERVER};

/// A parsed request.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) uri: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Bytes,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The session id from the `Session` header, without parameters.
    pub(super) fn session_id(&self) -> Option<&str> {
        self.header("Session")
            .map(|v| v.split(';').next().unwrap_or("").trim())
    }
}

/// What [`parse_next`] found at the front of the buffer.
#[derive(Debug)]
pub(super) enum Parsed {
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
pub(super) fn find_head_end(b: &[u8]) -> Option<(usize, usize)> {
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
pub(super) fn parse_next(buf: &mut BytesMut) -> Parsed {
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
pub(super) fn choose_transport(header: &str) -> Option<u8> {
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
pub(super) fn normalize_path(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/"
    } else {
        t
    }
}

/// `base` joined with a relative segment.
pub(super) fn join_path(base: &str, seg: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{seg}")
    } else {
        format!("{base}/{seg}")
    }
}

/// What a request URI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target {
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

pub(super) fn reason_phrase(status: u16) -> &'static str {
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
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Option<(&'static str, Vec<u8>)>,
}

impl Response {
    pub(super) fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn serialize(&self, cseq: Option<&str>) -> Vec<u8> {
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
