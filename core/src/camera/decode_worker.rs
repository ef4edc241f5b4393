//! One camera's decode thread: decides, per the [`DecodePolicy`](crate::DecodePolicy),
//! which compressed frames to decode, and publishes pictures to the frame cache.
//!
//! It runs on its own OS thread, never on the async workers, so a slow decode never
//! stalls another camera's RTSP session. The RTSP task hands it frames through a bounded
//! queue and never waits: when the queue is full the task drops frames until the next
//! keyframe (a decoder fed a gap would only produce corrupt pictures).
//!
//! The thread keeps the compressed frames since the last keyframe (the group of pictures,
//! GOP). With nobody watching (`OnDemand`), it decodes nothing; a snapshot asks it to
//! catch up, which decodes the buffered GOP up to now. With a subscriber, or for a short
//! grace period after a snapshot, it decodes every frame as it arrives.
//!
//! Memory: an `OnDemand` camera whose grace has lapsed with nobody subscribed releases its
//! decoder (the decoder's reference pictures: ~25 MB at 1080p) and turns the cached picture
//! into a JPEG of itself (see [`FrameCache::release_picture`]). Nothing is lost: the next
//! catch-up decodes the GOP again from its keyframe, which is what a snapshot of an idle
//! camera costs anyway. `Keyframes` (decodes every keyframe) and `Continuous` keep theirs.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::demand::Demand;
use super::frame_cache::{Content, FrameCache};
use crate::decode::{hevc, Codec, DecoderBackend, VideoDecoder};
use crate::error::{Error, ErrorKind, Result};
use crate::status::StatusCell;

/// Frames the queue holds before the RTSP task starts dropping (≈ 4 s at 15 fps).
const QUEUE_FRAMES: usize = 64;
/// Largest GOP kept, in bytes; beyond it the buffer is dropped until the next keyframe.
const MAX_GOP_BYTES: usize = 64 << 20;

/// A compressed video frame as received.
pub(crate) struct EncodedFrame {
    pub data: Bytes,
    pub keyframe: bool,
    pub captured_at: SystemTime,
    /// The stream's samples are full range (from the SPS in force).
    pub full_range: bool,
}

/// The video codec of a stream, as far as decoding is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    H264,
    H265,
    Jpeg,
}

impl VideoCodec {
    /// The codec a decoder decodes; `None` for MJPEG, which is passed through.
    pub fn decoded(self) -> Option<Codec> {
        match self {
            VideoCodec::H264 => Some(Codec::H264),
            VideoCodec::H265 => Some(Codec::H265),
            VideoCodec::Jpeg => None,
        }
    }
}

/// What the decode thread needs to know of a stream, sent as it starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamFacts {
    pub codec: VideoCodec,
    /// The decoder backend the camera uses (resolved at connect).
    pub decoder: DecoderBackend,
}

pub(crate) enum Msg {
    /// A new stream starts (connect or reconnect): forget the GOP and decoder state.
    NewStream(StreamFacts),
    Frame(EncodedFrame),
    /// Decode everything buffered and publish the newest picture.
    CatchUp(oneshot::Sender<Result<()>>),
}

/// The RTSP task's end of the queue.
pub(crate) struct WorkerHandle {
    tx: SyncSender<Msg>,
    /// After a dropped frame, nothing but a keyframe is sent.
    skip_to_keyframe: bool,
}

impl WorkerHandle {
    /// Hands a frame over without waiting; returns false when it was dropped.
    pub fn send_frame(&mut self, f: EncodedFrame) -> bool {
        if self.skip_to_keyframe && !f.keyframe {
            return false;
        }
        match self.tx.try_send(Msg::Frame(f)) {
            Ok(()) => {
                self.skip_to_keyframe = false;
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.skip_to_keyframe = true;
                false
            }
        }
    }

    pub fn new_stream(&mut self, facts: StreamFacts) {
        self.skip_to_keyframe = false;
        // A full queue here means the thread is far behind; the message must still arrive,
        // so wait for room (the thread drains quickly once it sees it).
        let _ = self.tx.send(Msg::NewStream(facts));
    }

    pub fn sender(&self) -> SyncSender<Msg> {
        self.tx.clone()
    }
}

/// Starts the decode thread of a camera.
pub(crate) fn spawn(
    rt: tokio::runtime::Handle,
    camera_id: &str,
    cache: Arc<FrameCache>,
    status: Arc<StatusCell>,
    demand: Arc<Demand>,
) -> Result<WorkerHandle> {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_FRAMES);
    let id = camera_id.to_owned();
    std::thread::Builder::new()
        .name(format!(
            "camkit-dec-{}",
            camera_id.chars().take(4).collect::<String>()
        ))
        .spawn(move || {
            let mut w = Worker {
                rt,
                id,
                cache,
                status,
                demand,
                stream: StreamFacts {
                    codec: VideoCodec::H264,
                    decoder: DecoderBackend::OpenH264,
                },
                decoder: None,
                fresh: false,
                gop: Vec::new(),
                gop_bytes: 0,
                decoded_upto: 0,
                fed: 0,
                output: 0,
                hold_back: 0,
                holds_picture: false,
                waiting_for_keyframe: true,
                last_error_log: None,
            };
            w.run(rx);
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot start decode thread: {e}"),
            )
        })?;
    Ok(WorkerHandle {
        tx,
        skip_to_keyframe: false,
    })
}

struct Worker {
    /// For encodes ahead of readers (`FrameCache::take_prefetch`), off this thread.
    rt: tokio::runtime::Handle,
    id: String,
    cache: Arc<FrameCache>,
    status: Arc<StatusCell>,
    demand: Arc<Demand>,
    /// The stream being decoded (until the first `NewStream`, no frame arrives).
    stream: StreamFacts,
    decoder: Option<VideoDecoder>,
    /// `decoder` was made at this GOP's keyframe, or missed pictures before it: the RASL
    /// pictures after an H.265 CRA keyframe refer to those and are left out (see [`hevc`]).
    fresh: bool,
    /// Frames since (and including) the last keyframe.
    gop: Vec<EncodedFrame>,
    gop_bytes: usize,
    /// How many of `gop` the decoder has consumed: its state is that of `gop[..decoded_upto]`.
    decoded_upto: usize,
    /// Access units fed to `decoder` and pictures it gave, since it was made: on a stream
    /// with B-frames it gives each picture up to the reorder depth later.
    fed: u64,
    output: u64,
    /// Pictures `decoder` still gives that are older than one published by a drain.
    hold_back: u64,
    /// The cache's latest picture is one this thread decoded and has not released.
    holds_picture: bool,
    waiting_for_keyframe: bool,
    last_error_log: Option<Instant>,
}

impl Worker {
    fn run(&mut self, rx: Receiver<Msg>) {
        loop {
            // Wake now and then so a lapsed grace period or policy change takes effect
            // even while no frames arrive.
            let msg = match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    self.release_if_idle();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match msg {
                Msg::NewStream(facts) => {
                    self.stream = facts;
                    self.gop.clear();
                    self.gop_bytes = 0;
                    self.decoded_upto = 0;
                    self.waiting_for_keyframe = true;
                    // A new stream may change resolution or profile: start from a clean
                    // decoder rather than trusting its old reference state.
                    self.decoder = None;
                }
                Msg::Frame(f) => self.on_frame(f),
                Msg::CatchUp(reply) => {
                    let r = self.catch_up(true);
                    let _ = reply.send(r);
                }
            }
            // Frames keep arriving while nobody watches (the timeout above then never
            // fires): check after every message too. Cheap while nothing is held.
            self.release_if_idle();
        }
        tracing::debug!(camera = %self.id, "decode thread ends");
    }

    fn on_frame(&mut self, f: EncodedFrame) {
        if self.stream.codec == VideoCodec::Jpeg {
            self.publish_jpeg(f);
            return;
        }
        if f.keyframe {
            // A decoder that missed pictures of the GOP that ends here (decode policy
            // `keyframes`) lacks what this keyframe's RASL pictures (H.265 CRA) refer to.
            self.fresh = self.decoder.is_none() || self.decoded_upto < self.gop.len();
            self.gop.clear();
            self.gop_bytes = 0;
            self.decoded_upto = 0;
            self.waiting_for_keyframe = false;
        } else if self.waiting_for_keyframe {
            return;
        }
        self.gop_bytes += f.data.len();
        let keyframe = f.keyframe;
        self.gop.push(f);
        if self.gop_bytes > MAX_GOP_BYTES {
            tracing::warn!(camera = %self.id, "GOP over {} MiB without a keyframe; dropping it", MAX_GOP_BYTES >> 20);
            self.status
                .frames_dropped
                .fetch_add(self.gop.len() as u64, Ordering::Relaxed);
            self.gop.clear();
            self.gop_bytes = 0;
            self.decoded_upto = 0;
            self.waiting_for_keyframe = true;
            return;
        }
        if self.demand.decode_now(keyframe) {
            let _ = self.catch_up(false);
        }
    }

    /// Decodes `gop[decoded_upto..]`, publishing only the last picture.
    ///
    /// `asked`: someone waits for a picture (a snapshot, connect's first picture). On a
    /// stream with B-frames the decoder holds pictures back for reordering (up to the
    /// stream's reorder depth), so right after a keyframe the decode may have given none
    /// yet; then the buffered GOP is decoded again by a decoder of its own that is drained,
    /// and its newest picture is published (see [`Worker::drain_copy`]).
    fn catch_up(&mut self, asked: bool) -> Result<()> {
        if self.stream.codec == VideoCodec::Jpeg {
            return Ok(());
        }
        if self.decoded_upto >= self.gop.len() {
            // Everything buffered was decoded already (a keyframe decoded on arrival under
            // `Keyframes`, or a grace period), yet a picture held back for reordering may
            // still be all there is: a reader who waits for the first one gets it drained.
            if asked && self.decoder.is_some() && self.cache.latest().is_none() {
                return self.drain_held_back();
            }
            return Ok(());
        }
        if self.decoder.is_none() {
            self.decoder = Some(self.new_decoder()?);
            self.fresh = true;
            self.fed = 0;
            self.output = 0;
            self.hold_back = 0;
        }
        let last = self.gop.len() - 1;
        let mut published = false;
        let mut last_err = None;
        for i in self.decoded_upto..=last {
            if self.fresh && self.undecodable_leading(i) {
                self.decoded_upto = i + 1;
                continue;
            }
            let dec = self.decoder.as_mut().expect("created above");
            let data = &self.gop[i].data;
            self.fed += 1;
            let r = if i == last {
                dec.decode(data)
                    .map(|p| p.map(|p| (Some(p), true)).unwrap_or((None, false)))
            } else {
                dec.decode_discard(data).map(|got| (None, got))
            };
            self.decoded_upto = i + 1;
            match r {
                Ok((picture, got)) => {
                    self.status.frames_decoded.fetch_add(1, Ordering::Relaxed);
                    if got {
                        self.output += 1;
                    }
                    // Pictures older than one a drain already published come out later
                    // from this decoder: not published again (time never runs backwards).
                    let stale = got && self.hold_back > 0;
                    if stale {
                        self.hold_back -= 1;
                    }
                    if let (Some(p), false) = (picture, stale) {
                        self.publish(p, i);
                        published = true;
                    }
                }
                Err(e) => {
                    self.status.frames_dropped.fetch_add(1, Ordering::Relaxed);
                    self.log_decode_error(&e);
                    last_err = Some(e);
                }
            }
        }
        if asked && !published {
            match self.drain_held_back() {
                Ok(()) => published = self.cache.latest().is_some(),
                Err(e) => last_err = Some(e),
            }
        }
        match last_err {
            Some(e) if !published => Err(e),
            _ => Ok(()),
        }
    }

    /// Publishes the newest picture the camera's decoder still holds back for reordering,
    /// drained from a copy (see [`Worker::drain_copy`]); nothing when it holds none back.
    fn drain_held_back(&mut self) -> Result<()> {
        if self.decoded_upto == 0 || self.fed <= self.output + self.hold_back {
            return Ok(());
        }
        match self.drain_copy() {
            Ok(Some(p)) => {
                // This decoder outputs the pictures it holds back later; the drained
                // one is the newest of them.
                self.hold_back = self.fed - self.output;
                self.publish(p, self.decoded_upto - 1);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                self.log_decode_error(&e);
                Err(e)
            }
        }
    }

    /// Decodes the buffered GOP with a decoder of its own and drains it: the newest picture
    /// (in display order) of a stream whose decoder still holds it back for reordering. The
    /// camera's decoder is left as it is, so continuous decoding goes on without a restart;
    /// this costs one more decode of the GOP so far, which is short (this is needed only
    /// while the reorder delay has given no picture yet: a few frames after the keyframe).
    fn drain_copy(&self) -> Result<Option<crate::picture::Picture>> {
        let mut dec = self.new_decoder()?;
        let mut picture = None;
        for (i, f) in self.gop[..self.decoded_upto].iter().enumerate() {
            if self.undecodable_leading(i) {
                continue;
            }
            if let Some(p) = dec.decode(&f.data)? {
                picture = Some(p);
            }
        }
        Ok(dec.drain()?.or(picture))
    }

    fn new_decoder(&self) -> Result<VideoDecoder> {
        let codec = self.stream.codec.decoded().ok_or_else(|| {
            Error::new(ErrorKind::Internal, "MJPEG is passed through, not decoded")
        })?;
        VideoDecoder::with_backend(codec, self.stream.decoder)
    }

    /// `gop[i]` is a picture a decoder that starts at `gop[0]` cannot decode: an H.265
    /// RASL picture (libavcodec would skip it without output). Left out, so every access
    /// unit fed gives a picture and the reorder count (`fed`, `output`) stays right.
    fn undecodable_leading(&self, i: usize) -> bool {
        i > 0 && self.stream.codec == VideoCodec::H265 && hevc::is_rasl(&self.gop[i].data)
    }

    /// Publishes a decoded picture as `gop[i]`'s.
    fn publish(&mut self, mut p: crate::picture::Picture, i: usize) {
        p.full_range = self.gop[i].full_range;
        // Once per published picture, in place: every encode of it (any size, any
        // quality) then starts from full range, as JPEG wants.
        p.expand_range();
        self.status.set_resolution(p.width, p.height);
        self.cache
            .publish(Content::Picture(p), self.gop[i].captured_at);
        self.holds_picture = true;
        if let Some((pic, key)) = self.cache.take_prefetch() {
            // Readers keep up with the camera: have their JPEG ready when they come,
            // encoded beside this thread, which decodes on.
            let cache = self.cache.clone();
            drop(
                self.rt
                    .spawn_blocking(move || cache.encode_ahead(&pic, key)),
            );
        }
    }

    /// Releases the decoder and the raw picture of an `OnDemand` camera nobody uses. The
    /// next catch-up re-decodes the GOP from its keyframe (`decoded_upto = 0`).
    fn release_if_idle(&mut self) {
        // A new stream drops the decoder but not the picture: check both.
        if (self.decoder.is_none() && !self.holds_picture) || !self.demand.idle() {
            return;
        }
        self.decoder = None;
        self.decoded_upto = 0;
        self.holds_picture = false;
        self.cache.release_picture();
        trim_heap();
        tracing::debug!(camera = %self.id, "idle: decoder and picture released");
    }

    fn publish_jpeg(&mut self, f: EncodedFrame) {
        match crate::jpeg::dimensions(&f.data) {
            Ok((width, height)) => {
                self.status.set_resolution(width, height);
                self.status.frames_decoded.fetch_add(1, Ordering::Relaxed);
                self.cache.publish(
                    Content::Jpeg {
                        data: f.data,
                        width,
                        height,
                        quality: None,
                    },
                    f.captured_at,
                );
            }
            Err(e) => {
                self.status.frames_dropped.fetch_add(1, Ordering::Relaxed);
                self.log_decode_error(&e);
            }
        }
    }

    fn log_decode_error(&mut self, e: &Error) {
        // One line per 10 s at most: a corrupt stream must not flood the log.
        let now = Instant::now();
        if self
            .last_error_log
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
        {
            self.last_error_log = Some(now);
            tracing::warn!(camera = %self.id, error = %e, "decode error");
        }
    }
}

/// Gives the memory just freed back to the system. glibc keeps freed blocks in the
/// freeing thread's arena, and the decoder's picture buffers (a few hundred KiB to a few
/// MiB each) stay resident there after the decoder is dropped unless trimmed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions; it only returns free pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}
