//! Streamed answers: server-sent events turned into a `Stream` of text pieces.

use std::collections::VecDeque;
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use reqwest::header::CONTENT_TYPE;

use super::client::{missing, read_limited, MoondreamClient};
use super::sse::{interpret, SseParser};
use crate::error::{Error, ErrorKind, Result};
use crate::util::fmt_duration;

/// A streamed answer: pieces of text in order, ending when the answer is complete.
///
/// An error item is the last item. Dropping the stream abandons the answer (and closes its
/// connection).
pub struct TextStream {
    inner: BoxStream<'static, Result<String>>,
}

impl std::fmt::Debug for TextStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextStream")
    }
}

struct StreamState {
    client: MoondreamClient,
    /// `None` once consumed.
    resp: Option<reqwest::Response>,
    path: &'static str,
    /// The field holding the whole text when the service answers with JSON instead of
    /// events (Moondream Station's errors, or a server that does not stream).
    field: &'static str,
    sse: bool,
    parser: SseParser,
    pending: VecDeque<Result<String>>,
    done: bool,
}

impl TextStream {
    pub(super) fn new(
        client: MoondreamClient,
        path: &'static str,
        field: &'static str,
        resp: reqwest::Response,
    ) -> Self {
        let sse = !resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        let state = StreamState {
            client,
            resp: Some(resp),
            path,
            field,
            sse,
            parser: SseParser::default(),
            pending: VecDeque::new(),
            done: false,
        };
        TextStream {
            inner: futures::stream::unfold(state, |mut st| async move {
                let item = st.next_item().await?;
                Some((item, st))
            })
            .boxed(),
        }
    }

    /// The whole text: every piece joined.
    pub async fn text(mut self) -> Result<String> {
        let mut s = String::new();
        while let Some(piece) = self.next().await {
            s.push_str(&piece?);
        }
        Ok(s)
    }
}

impl Stream for TextStream {
    type Item = Result<String>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl StreamState {
    async fn next_item(&mut self) -> Option<Result<String>> {
        let idle = self.client.config().timeout;
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            if !self.sse {
                self.done = true;
                return Some(self.whole_json(idle).await);
            }
            let resp = self.resp.as_mut()?;
            let read = tokio::time::timeout(idle, resp.chunk()).await;
            let mut events = Vec::new();
            let step = match read {
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "Moondream stopped sending the answer to {} for {}; giving up",
                        self.path,
                        fmt_duration(idle)
                    ),
                )),
                Ok(Err(e)) => Err(self.client.transport_error(self.path, &e)),
                Ok(Ok(Some(bytes))) => self.parser.push(&bytes, &mut events),
                Ok(Ok(None)) => {
                    // The end of the body: whatever is complete counts, even without a
                    // final `completed` event.
                    self.done = true;
                    self.parser.finish(&mut events)
                }
            };
            if let Err(e) = step {
                self.done = true;
                return Some(Err(e));
            }
            for data in events {
                match interpret(&data) {
                    Ok(piece) => {
                        if let Some(c) = piece.chunk.filter(|c| !c.is_empty()) {
                            self.pending.push_back(Ok(c));
                        }
                        if piece.completed {
                            self.done = true;
                            break;
                        }
                    }
                    Err(e) => {
                        self.pending.push_back(Err(e
                            .clone()
                            .with_message(self.client.redact(e.message()))));
                        self.done = true;
                        break;
                    }
                }
            }
        }
    }

    /// A JSON body where events were expected: the service's error, or the whole answer.
    async fn whole_json(&mut self, idle: Duration) -> Result<String> {
        let Some(resp) = self.resp.take() else {
            return Err(missing(self.path, self.field));
        };
        let bytes = match tokio::time::timeout(idle, read_limited(resp)).await {
            Err(_) => return Err(self.client.timeout_error(self.path)),
            Ok(r) => r.map_err(|e| self.client.read_error(self.path, e))?,
        };
        let v = self.client.parse_json(self.path, &bytes)?;
        v.get(self.field)
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| missing(self.path, self.field))
    }
}
