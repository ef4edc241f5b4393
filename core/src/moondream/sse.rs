//! Server-sent events as Moondream streams answers: `data: {"chunk": "…"}` events separated
//! by blank lines, ending with an event whose `completed` is `true`.
//!
//! The cloud sends `{"chunk": "…", "completed": false}` and may put the last piece in the
//! completed event; Moondream Station sends `{"chunk": "…"}`, then `{"stats": {…}}`, then
//! `{"completed": true}`. An `{"error": "…"}` event is the service failing mid-answer. The
//! parser takes bytes as they arrive, in pieces of any size (a line or a UTF-8 character
//! may be split between reads), and accepts `\n`, `\r\n` and `\r` line ends.

use crate::error::{Error, ErrorKind, Result};

/// Longest line kept while waiting for its end: a server that never sends a newline must
/// not grow memory without bound.
const MAX_LINE: usize = 1 << 20;

/// Splits a byte stream into SSE events' `data`.
#[derive(Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds bytes; appends the data of every event they complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<()> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            match self.buf[i] {
                b'\n' => {
                    self.line(start, i, out)?;
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    if i + 1 == self.buf.len() {
                        // Might be the first half of "\r\n": wait for the next byte.
                        break;
                    }
                    self.line(start, i, out)?;
                    i += if self.buf[i + 1] == b'\n' { 2 } else { 1 };
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            return Err(Error::new(
                ErrorKind::ServiceError,
                "Moondream sent a streamed line longer than 1 MiB; giving up on the answer",
            ));
        }
        Ok(())
    }

    /// The stream ended: a last line without its newline, or an event without its blank
    /// line, still counts.
    pub fn finish(&mut self, out: &mut Vec<String>) -> Result<()> {
        if !self.buf.is_empty() {
            let end = if self.buf.last() == Some(&b'\r') {
                self.buf.len() - 1
            } else {
                self.buf.len()
            };
            self.line(0, end, out)?;
            self.buf.clear();
        }
        self.dispatch(out);
        Ok(())
    }

    fn line(&mut self, start: usize, end: usize, out: &mut Vec<String>) -> Result<()> {
        let line = std::str::from_utf8(&self.buf[start..end]).map_err(|_| {
            Error::new(
                ErrorKind::ServiceError,
                "Moondream sent a streamed line that is not UTF-8",
            )
        })?;
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(()); // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
        // `event`, `id`, `retry` carry nothing Moondream uses.
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<String>) {
        if self.has_data {
            out.push(std::mem::take(&mut self.data));
            self.has_data = false;
        }
    }
}

/// What one event means for the answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Text to append to the answer (may be empty).
    pub chunk: Option<String>,
    /// The answer is complete.
    pub completed: bool,
}

/// Reads one event's data: a piece of the answer, the end, or the service's error.
pub(crate) fn interpret(data: &str) -> Result<Piece> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(Piece {
            chunk: None,
            completed: true,
        });
    }
    let v: serde_json::Value = serde_json::from_str(data).map_err(|_| {
        Error::new(
            ErrorKind::ServiceError,
            format!(
                "Moondream streamed an event camkit cannot read: {}",
                super::client::excerpt(data)
            ),
        )
    })?;
    if let Some(msg) = super::client::error_message(&v) {
        return Err(Error::new(
            ErrorKind::ServiceError,
            format!("Moondream failed while answering: {msg}"),
        ));
    }
    Ok(Piece {
        chunk: v.get("chunk").and_then(|c| c.as_str()).map(str::to_owned),
        completed: v.get("completed").and_then(|c| c.as_bool()) == Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(pieces: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::default();
        let mut out = vec![];
        for b in pieces {
            p.push(b, &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn events_across_reads_and_line_ends() {
        let whole = "data: {\"chunk\": \"The \"}\n\ndata: {\"chunk\": \"door\"}\r\n\r\n: keep-alive\n\ndata: {\"completed\": true}\n\n";
        let expect = vec![
            r#"{"chunk": "The "}"#.to_owned(),
            r#"{"chunk": "door"}"#.to_owned(),
            r#"{"completed": true}"#.to_owned(),
        ];
        assert_eq!(events(&[whole.as_bytes()]), expect);
        // Byte by byte, including inside "\r\n".
        let bytes: Vec<&[u8]> = whole.as_bytes().chunks(1).collect();
        assert_eq!(events(&bytes), expect);
        // Bare "\r" line ends.
        let cr = whole.replace("\r\n", "\n").replace('\n', "\r");
        let bytes: Vec<&[u8]> = cr.as_bytes().chunks(3).collect();
        assert_eq!(events(&bytes), expect);
    }

    #[test]
    fn utf8_split_between_reads() {
        let s = "data: {\"chunk\": \"café ☕\"}\n\n";
        let b = s.as_bytes();
        let at = s.find('☕').unwrap() + 1; // inside the 3-byte character
        assert_eq!(
            events(&[&b[..at], &b[at..]]),
            vec!["{\"chunk\": \"café ☕\"}".to_owned()]
        );
    }

    #[test]
    fn multi_line_data_and_unterminated_last_event() {
        assert_eq!(
            events(&[b"event: x\ndata: a\ndata:b\nid: 1\n\ndata: tail"]),
            vec!["a\nb".to_owned(), "tail".to_owned()]
        );
        assert!(events(&[b"\n\n: only comments\n\n"]).is_empty());
    }

    #[test]
    fn overlong_line_is_an_error() {
        let mut p = SseParser::default();
        let mut out = vec![];
        let big = vec![b'a'; MAX_LINE + 1];
        assert_eq!(
            p.push(&big, &mut out).unwrap_err().kind(),
            ErrorKind::ServiceError
        );
    }

    #[test]
    fn interprets_both_flavours() {
        let piece = |c: Option<&str>, done| Piece {
            chunk: c.map(str::to_owned),
            completed: done,
        };
        assert_eq!(
            interpret(r#"{"chunk": "Yes", "completed": false}"#).unwrap(),
            piece(Some("Yes"), false)
        );
        assert_eq!(
            interpret(r#"{"chunk": ".", "completed": true}"#).unwrap(),
            piece(Some("."), true)
        );
        assert_eq!(
            interpret(r#"{"completed": true}"#).unwrap(),
            piece(None, true)
        );
        assert_eq!(
            interpret(r#"{"stats": {"tokens": 3}}"#).unwrap(),
            piece(None, false)
        );
        assert_eq!(interpret("[DONE]").unwrap(), piece(None, true));
        let e = interpret(r#"{"error": "model not loaded"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ServiceError);
        assert!(e.message().contains("model not loaded"), "{e}");
        assert_eq!(
            interpret("<html>").unwrap_err().kind(),
            ErrorKind::ServiceError
        );
    }
}
