//! Live video as the camera sent it, without decoding: fragmented MP4 for browsers (Media
//! Source Extensions), HTTP clients and players, or the raw H.264 / H.265 access units for
//! callers with their own decoder. MJPEG cameras have no video stream: subscribing is an
//! [`crate::ErrorKind::UnsupportedCodec`] error naming the codec.
//!
//! Each camera has a hub fed by its streaming task with every compressed frame (see
//! `hub`). A subscription starts with the frames since the last keyframe, so its first
//! picture comes at once; it has its own queue, bounded in bytes, and skips to the next
//! keyframe when its consumer falls behind (see `queue`). Video subscriptions do not make
//! the camera decode: an on-demand camera watched only through video stays undecoded.

mod annexb;
mod fmp4;
mod hub;
mod hvcc;
mod queue;
mod timeline;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::frame::StreamChoice;

pub(crate) use hub::VideoHub;
#[cfg(feature = "cluster")]
pub(crate) use queue::Queue;

/// The default bound of a subscriber's queue.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 4 << 20;

/// What a video subscription yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VideoFormat {
    /// Fragmented MP4: an init segment, then one media segment per frame.
    #[default]
    Fmp4,
    /// H.264 or H.265 access units in Annex B form (start codes, the parameter sets before
    /// each keyframe), as a decoder such as WebCodecs, ffmpeg or a GPU decoder takes them.
    AnnexB,
}

/// Options of [`crate::CameraManager::subscribe_video`].
#[derive(Clone, Copy, Debug)]
pub struct VideoOptions {
    /// What the subscription yields.
    pub format: VideoFormat,
    /// Bytes a consumer may fall behind before frames are skipped up to the next keyframe
    /// (at least 64 KiB; default 4 MiB).
    pub max_queue_bytes: usize,
    /// Which stream of a camera with a `sub_stream` it comes from: `Sub` for the
    /// sub-stream when it streams (else the main stream: a subscription stays on the stream
    /// it started on); `Main` and `Auto` (default) for the main stream.
    pub stream: StreamChoice,
}

impl Default for VideoOptions {
    fn default() -> Self {
        VideoOptions {
            format: VideoFormat::Fmp4,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            stream: StreamChoice::Auto,
        }
    }
}

impl VideoOptions {
    /// Fragmented MP4 with the default queue bound.
    pub fn fmp4() -> Self {
        Self::default()
    }

    /// Annex B access units with the default queue bound.
    pub fn annex_b() -> Self {
        VideoOptions {
            format: VideoFormat::AnnexB,
            ..Self::default()
        }
    }

    /// Checks the options, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        if self.max_queue_bytes < 64 << 10 {
            return Err(Error::invalid("maxQueueBytes", "must be at least 65536"));
        }
        Ok(())
    }
}

/// What a chunk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoChunkKind {
    /// `ftyp` + `moov`: comes first, and again whenever the stream's parameters change
    /// (resolution, camera restart, reconnect). The media segments after it need it.
    Init,
    /// `moof` + `mdat` of one frame.
    Segment,
    /// One Annex B access unit ([`VideoFormat::AnnexB`]).
    AccessUnit,
}

/// One piece of a video subscription.
#[derive(Clone, Debug)]
pub struct VideoChunk {
    /// What `data` is.
    pub kind: VideoChunkKind,
    /// The bytes, shared with every other subscriber (no copy per subscriber).
    pub data: Bytes,
    /// The frame is a keyframe (a decoder can start here). `false` for init segments.
    pub keyframe: bool,
    /// Presentation time on the stream's 90 kHz timeline (0 for init segments).
    pub pts_90k: i64,
    /// The RFC 6381 codec string, e.g. `avc1.640028` or `hvc1.1.6.L93.B0`.
    pub codec: Arc<str>,
    /// When camkit received the frame from the camera.
    pub received_at: std::time::Instant,
}

impl VideoChunk {
    /// The MIME type a `MediaSource` or HTTP response names: `video/mp4; codecs="…"`.
    pub fn mime_type(&self) -> String {
        format!("video/mp4; codecs=\"{}\"", self.codec)
    }
}

/// A live video subscription to one camera, a `futures::Stream` of [`VideoChunk`]s. It
/// ends when the camera is disconnected or the manager closed; dropping it unsubscribes.
pub struct VideoSubscription {
    camera_id: String,
    queue: Arc<queue::Queue>,
}

impl VideoSubscription {
    pub(crate) fn new(camera_id: &str, hub: &VideoHub, opts: VideoOptions) -> Result<Self> {
        Ok(VideoSubscription {
            camera_id: camera_id.to_owned(),
            queue: hub.subscribe(opts.format, opts.max_queue_bytes)?,
        })
    }

    /// The camera this subscription follows.
    pub fn camera_id(&self) -> &str {
        &self.camera_id
    }

    /// The next chunk; `None` once the camera is gone (or its new session's video cannot
    /// be carried: see [`end_error`](Self::end_error)).
    pub async fn next(&mut self) -> Option<VideoChunk> {
        futures::future::poll_fn(|cx| self.queue.poll_next(cx)).await
    }

    /// Why the subscription ended, when it was not the camera's disconnect or the
    /// manager's close: an [`crate::ErrorKind::UnsupportedCodec`] error when the camera
    /// reconnected with video the stream cannot carry (MJPEG).
    pub fn end_error(&self) -> Option<Error> {
        self.queue.end_error()
    }

    /// Chunks skipped so far because this consumer was behind.
    pub fn skipped(&self) -> u64 {
        self.queue.skipped()
    }

    /// Bytes waiting in this subscription's queue.
    pub fn queued_bytes(&self) -> usize {
        self.queue.queued_bytes()
    }
}

impl futures::Stream for VideoSubscription {
    type Item = VideoChunk;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<VideoChunk>> {
        self.queue.poll_next(cx)
    }
}

impl Drop for VideoSubscription {
    fn drop(&mut self) {
        self.queue.forget();
    }
}

impl std::fmt::Debug for VideoSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoSubscription")
            .field("camera", &self.camera_id)
            .finish()
    }
}

#[cfg(test)]
mod tests;
