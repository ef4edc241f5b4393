//! One video subscriber's queue: bounded in bytes, and skipping to the next keyframe
//! when its consumer falls behind.
//!
//! The camera task pushes without ever waiting: a full queue drops the frame and every
//! following one up to the next keyframe, which then replaces what is still queued (a
//! late consumer wants the newest picture, and a keyframe decodes without what came
//! before). So a consumer that stops reading holds at most `max_bytes` plus one keyframe,
//! and never slows the camera or the other subscribers.
//!
//! H.265 RASL pictures refer to pictures before their CRA keyframe: after a start or a
//! skip at a keyframe (or a new init segment) the consumer's decoder has none of those, so
//! the RASL pictures that follow are left out too (players would show garbage or fail).

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use parking_lot::Mutex;

use super::{VideoChunk, VideoChunkKind};
use crate::error::Error;

#[derive(Default)]
struct State {
    items: VecDeque<VideoChunk>,
    bytes: usize,
    /// Dropping frames until the next keyframe.
    lagging: bool,
    /// No more chunks will come (camera stopped).
    closed: bool,
    /// Why, when it is an error rather than the camera's disconnect.
    end_error: Option<Error>,
    /// A keyframe came since the last init segment or skip: pictures since decode.
    continuous: bool,
    /// The consumer's decoder started at the last keyframe: its RASL pictures are dropped.
    drop_leading: bool,
    /// The subscription was dropped: the hub forgets this queue.
    gone: bool,
    skipped: u64,
}

/// Shared between the hub (producer) and one [`super::VideoSubscription`] (consumer).
pub(crate) struct Queue {
    state: Mutex<State>,
    waker: AtomicWaker,
    max_bytes: usize,
}

impl Queue {
    pub fn new(max_bytes: usize) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            max_bytes,
        })
    }

    /// Queues a chunk unless the consumer is behind; `init` is the segment to resend when
    /// skipping drops a queued init segment; `rasl` marks an H.265 RASL picture. Returns
    /// `false` once the consumer is gone.
    pub fn offer(&self, chunk: VideoChunk, init: Option<&VideoChunk>, rasl: bool) -> bool {
        let mut s = self.state.lock();
        if s.gone {
            return false;
        }
        if chunk.kind == VideoChunkKind::Init {
            // Small, and the media after it cannot be read without it: never skipped.
            s.bytes += chunk.data.len();
            s.items.push_back(chunk);
            s.continuous = false;
        } else {
            if s.lagging && !chunk.keyframe {
                s.skipped += 1;
                return true;
            }
            if chunk.keyframe {
                s.drop_leading = s.lagging || !s.continuous;
                s.continuous = true;
            } else if rasl && s.drop_leading {
                s.skipped += 1;
                return true;
            }
            if s.lagging {
                let dropped_init = s.items.iter().any(|c| c.kind == VideoChunkKind::Init);
                s.skipped += s.items.len() as u64;
                s.items.clear();
                s.bytes = 0;
                s.lagging = false;
                if let (true, Some(init)) = (dropped_init, init) {
                    s.bytes += init.data.len();
                    s.items.push_back(init.clone());
                }
            }
            // An empty queue takes any chunk, so a keyframe over the bound still passes.
            if !s.items.is_empty() && s.bytes + chunk.data.len() > self.max_bytes {
                s.lagging = true;
                s.skipped += 1;
                return true;
            }
            s.bytes += chunk.data.len();
            s.items.push_back(chunk);
        }
        drop(s);
        self.waker.wake();
        true
    }

    /// No more chunks: the consumer gets what is queued, then the end.
    pub fn close(&self) {
        self.close_with(None);
    }

    /// As [`close`](Self::close), with the error that ended the stream.
    pub fn close_with(&self, error: Option<Error>) {
        let mut s = self.state.lock();
        s.closed = true;
        if s.end_error.is_none() {
            s.end_error = error;
        }
        drop(s);
        self.waker.wake();
    }

    /// The error that ended the stream, when it was not the camera's disconnect.
    pub fn end_error(&self) -> Option<Error> {
        self.state.lock().end_error.clone()
    }

    /// The consumer is gone.
    pub fn forget(&self) {
        let mut s = self.state.lock();
        s.gone = true;
        s.items.clear();
        s.bytes = 0;
    }

    /// Chunks dropped so far because the consumer was behind.
    pub fn skipped(&self) -> u64 {
        self.state.lock().skipped
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().bytes
    }

    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<VideoChunk>> {
        for attempt in 0..2 {
            {
                let mut s = self.state.lock();
                if let Some(c) = s.items.pop_front() {
                    s.bytes -= c.data.len();
                    return Poll::Ready(Some(c));
                }
                if s.closed {
                    return Poll::Ready(None);
                }
            }
            if attempt == 0 {
                // Register, then look again: a push between the look and the register
                // would otherwise be missed.
                self.waker.register(cx.waker());
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::StreamExt;

    fn chunk(kind: VideoChunkKind, keyframe: bool, len: usize, pts: i64) -> VideoChunk {
        VideoChunk {
            kind,
            data: Bytes::from(vec![0u8; len]),
            keyframe,
            pts_90k: pts,
            codec: "avc1.42c00b".into(),
            received_at: std::time::Instant::now(),
        }
    }

    fn drain(q: &Queue) -> Vec<VideoChunk> {
        let mut out = Vec::new();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        while let Poll::Ready(Some(c)) = q.poll_next(&mut cx) {
            out.push(c);
        }
        out
    }

    #[test]
    fn a_full_queue_skips_to_the_next_keyframe_and_stays_bounded() {
        let q = Queue::new(1000);
        let init = chunk(VideoChunkKind::Init, false, 50, 0);
        assert!(q.offer(init.clone(), Some(&init), false));
        q.offer(
            chunk(VideoChunkKind::Segment, true, 400, 0),
            Some(&init),
            false,
        );
        for i in 1..20 {
            q.offer(
                chunk(VideoChunkKind::Segment, false, 200, i),
                Some(&init),
                false,
            );
            assert!(q.queued_bytes() <= 1000);
        }
        assert!(q.skipped() > 0);
        q.offer(
            chunk(VideoChunkKind::Segment, true, 400, 20),
            Some(&init),
            false,
        );
        q.offer(
            chunk(VideoChunkKind::Segment, false, 200, 21),
            Some(&init),
            false,
        );
        let got = drain(&q);
        let kinds: Vec<_> = got.iter().map(|c| (c.kind, c.pts_90k)).collect();
        // The stale frames went; the init segment they were queued behind came again.
        assert_eq!(
            kinds,
            vec![
                (VideoChunkKind::Init, 0),
                (VideoChunkKind::Segment, 20),
                (VideoChunkKind::Segment, 21)
            ]
        );
    }

    #[test]
    fn close_ends_the_stream_after_what_is_queued_and_forget_refuses_more() {
        let q = Queue::new(1000);
        q.offer(chunk(VideoChunkKind::AccessUnit, true, 10, 0), None, false);
        q.close();
        let mut s = futures::stream::poll_fn(|cx| q.poll_next(cx));
        let got = futures::executor::block_on(async {
            let a = s.next().await.map(|c| c.pts_90k);
            let b = s.next().await.map(|c| c.pts_90k);
            (a, b)
        });
        assert_eq!(got, (Some(0), None));
        q.forget();
        assert!(!q.offer(chunk(VideoChunkKind::AccessUnit, true, 10, 1), None, false));
    }

    /// After the start and after a skip, the RASL pictures of the keyframe decoding starts
    /// at are left out; in a continuous stream they are kept.
    #[test]
    fn leading_pictures_are_left_out_where_decoding_starts() {
        let q = Queue::new(1000);
        let init = chunk(VideoChunkKind::Init, false, 50, 0);
        q.offer(init.clone(), None, false);
        q.offer(
            chunk(VideoChunkKind::Segment, true, 10, 0),
            Some(&init),
            false,
        );
        q.offer(
            chunk(VideoChunkKind::Segment, false, 10, 1),
            Some(&init),
            true,
        );
        q.offer(
            chunk(VideoChunkKind::Segment, false, 10, 2),
            Some(&init),
            false,
        );
        q.offer(
            chunk(VideoChunkKind::Segment, true, 10, 3),
            Some(&init),
            false,
        );
        q.offer(
            chunk(VideoChunkKind::Segment, false, 10, 4),
            Some(&init),
            true,
        );
        let pts: Vec<i64> = drain(&q).iter().map(|c| c.pts_90k).collect();
        assert_eq!(pts, vec![0, 0, 2, 3, 4]);
        assert_eq!(q.skipped(), 1);
        q.close_with(Some(Error::new(crate::ErrorKind::UnsupportedCodec, "x")));
        assert_eq!(
            q.end_error().map(|e| e.kind()),
            Some(crate::ErrorKind::UnsupportedCodec)
        );
    }
}
