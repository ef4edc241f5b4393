//! A camera's video fan-out: the compressed frames of the current GOP, the init segment of
//! the current parameters, and the subscribers' queues.
//!
//! H.264 and H.265 streams are carried; a camera whose session sends anything else (MJPEG)
//! refuses video subscriptions with [`ErrorKind::UnsupportedCodec`], and ends those open
//! with that error, rather than leaving them silent.
//!
//! Invariants: `gop` starts with a keyframe of the current `init` (or is empty); each
//! frame is muxed at most once, when the first fMP4 subscriber needs it, and shared by all
//! (`Bytes`); the camera task's cost without subscribers is one `Bytes` clone per frame
//! plus the parameter-set scan of keyframes. Memory: the GOP (capped by [`GOP_MAX_BYTES`])
//! plus each queue's bound.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use super::fmp4::{self, TrackParams};
use super::hvcc;
use super::queue::Queue;
use super::timeline::{SampleTimes, Timeline};
use super::{VideoChunk, VideoChunkKind, VideoFormat};
use crate::decode::Codec;
use crate::error::{Error, ErrorKind, Result};

/// A GOP longer than this is not kept for joiners (they wait for the next keyframe).
const GOP_MAX_BYTES: usize = 32 << 20;

struct Sample {
    codec: Codec,
    au: Bytes,
    keyframe: bool,
    /// An H.265 RASL picture (see `queue`).
    rasl: bool,
    times: SampleTimes,
    seq: u32,
    received_at: Instant,
    segment: OnceLock<Option<Bytes>>,
}

struct Init {
    chunk: VideoChunk,
}

struct Sub {
    queue: Arc<Queue>,
    format: VideoFormat,
}

struct State {
    /// The current session's codec.
    codec: Codec,
    /// Why the current session cannot be carried (its codec), if it cannot.
    refused: Option<Error>,
    params: Option<TrackParams>,
    init: Option<Init>,
    gop: Vec<Arc<Sample>>,
    gop_bytes: usize,
    timeline: Timeline,
    seq: u32,
    subs: Vec<Sub>,
    /// The next keyframe starts a new init segment whatever its parameters (reconnect).
    new_session: bool,
    /// This session's unreadable parameter sets were logged.
    warned: bool,
    closed: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            codec: Codec::H264,
            refused: None,
            params: None,
            init: None,
            gop: Vec::new(),
            gop_bytes: 0,
            timeline: Timeline::default(),
            seq: 0,
            subs: Vec::new(),
            new_session: false,
            warned: false,
            closed: false,
        }
    }
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct VideoHub {
    state: Mutex<State>,
}

impl Sample {
    fn segment(&self) -> Option<Bytes> {
        self.segment
            .get_or_init(|| {
                match fmp4::media_segment(self.codec, self.seq, &self.au, self.keyframe, self.times)
                {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::warn!(error = %e, "frame left out of the video stream");
                        None
                    }
                }
            })
            .clone()
    }

    fn chunk(&self, format: VideoFormat, codec: &Arc<str>) -> Option<VideoChunk> {
        let (kind, data) = match format {
            VideoFormat::Fmp4 => (VideoChunkKind::Segment, self.segment()?),
            VideoFormat::AnnexB => (VideoChunkKind::AccessUnit, self.au.clone()),
        };
        Some(VideoChunk {
            kind,
            data,
            keyframe: self.keyframe,
            pts_90k: self.times.pts,
            codec: codec.clone(),
            received_at: self.received_at,
        })
    }
}

impl VideoHub {
    /// A new RTSP session of `codec` begins: its first keyframe gets a fresh init segment
    /// and the timeline continues after the last frame.
    pub fn new_session(&self, codec: Codec) {
        let mut s = self.state.lock();
        s.new_session = true;
        s.warned = false;
        s.codec = codec;
        s.refused = None;
        s.timeline.discontinuity();
        s.gop.clear();
        s.gop_bytes = 0;
    }

    /// A new session whose video cannot be carried (`codec` names it, e.g. `MJPEG`): open
    /// subscriptions end with an [`ErrorKind::UnsupportedCodec`] error and new ones are
    /// refused with it, until a session of H.264 or H.265 begins.
    pub fn refuse(&self, camera_id: &str, codec: &str) {
        let e = Error::new(
            ErrorKind::UnsupportedCodec,
            format!(
                "camera {camera_id:?} sends {codec} video, which the video stream does not \
                 carry (H.264 and H.265 only): use its frames, MJPEG or WebSocket pictures \
                 instead, or switch the camera to H.264 or H.265"
            ),
        );
        let mut s = self.state.lock();
        s.params = None;
        s.init = None;
        s.gop.clear();
        s.gop_bytes = 0;
        for sub in s.subs.drain(..) {
            sub.queue.close_with(Some(e.clone()));
        }
        s.refused = Some(e);
    }

    /// One compressed frame (Annex B access unit) as the camera sent it.
    pub fn push(&self, au: &Bytes, keyframe: bool, rtp_timestamp: i64, clock_rate: u32) {
        let received_at = Instant::now();
        let mut s = self.state.lock();
        if s.closed || s.refused.is_some() {
            return;
        }
        let codec = s.codec;
        if keyframe {
            if let Some(p) = TrackParams::from_keyframe(codec, au) {
                if s.new_session || s.params.as_ref() != Some(&p) {
                    s.new_session = false;
                    match fmp4::init_segment(&p) {
                        Ok(data) => {
                            let chunk = VideoChunk {
                                kind: VideoChunkKind::Init,
                                data,
                                keyframe: false,
                                pts_90k: 0,
                                codec: Arc::from(p.codec.as_str()),
                                received_at,
                            };
                            tracing::debug!(codec = %p.codec, width = p.width, height = p.height, "new video init segment");
                            s.init = Some(Init { chunk });
                            s.params = Some(p);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "no init segment for these parameters");
                            s.init = None;
                            s.params = None;
                        }
                    }
                    let init = s.init.as_ref().map(|i| i.chunk.clone());
                    if let Some(init) = init {
                        s.subs.retain(|sub| {
                            sub.format != VideoFormat::Fmp4
                                || sub.queue.offer(init.clone(), None, false)
                        });
                    }
                }
            } else if s.init.is_none() && !s.warned {
                s.warned = true;
                tracing::warn!(
                    codec = codec.label(),
                    "a keyframe without readable parameter sets: no video stream until one has them"
                );
            }
            s.gop.clear();
            s.gop_bytes = 0;
        }
        let Some(codec_string) = s.init.as_ref().map(|i| i.chunk.codec.clone()) else {
            return; // Nothing playable before the first keyframe with parameters.
        };
        if !keyframe && s.gop.is_empty() && s.gop_bytes == 0 {
            // Mid-GOP after a (re)start: undecodable without its keyframe.
            return;
        }
        let times = s.timeline.next(rtp_timestamp, clock_rate);
        s.seq = s.seq.wrapping_add(1);
        let sample = Arc::new(Sample {
            codec,
            au: au.clone(),
            keyframe,
            rasl: codec == Codec::H265 && !keyframe && hvcc::is_rasl(au),
            times,
            seq: s.seq,
            received_at,
            segment: OnceLock::new(),
        });
        if s.gop_bytes + au.len() <= GOP_MAX_BYTES {
            s.gop_bytes += au.len();
            s.gop.push(sample.clone());
        } else if !s.gop.is_empty() {
            // Too long to replay to joiners; they wait for the next keyframe. gop_bytes
            // stays high so later frames are still muxed for current subscribers.
            s.gop.clear();
        }
        let init = s.init.as_ref().map(|i| i.chunk.clone());
        s.subs
            .retain(|sub| match sample.chunk(sub.format, &codec_string) {
                Some(c) => sub.queue.offer(c, init.as_ref(), sample.rasl),
                None => true,
            });
    }

    /// Adds a subscriber; it starts with the init segment and the current GOP, so its
    /// first picture is the latest keyframe's, at once. Refused while the camera's video
    /// cannot be carried (see [`refuse`](Self::refuse)).
    pub fn subscribe(&self, format: VideoFormat, max_bytes: usize) -> Result<Arc<Queue>> {
        let queue = Queue::new(max_bytes);
        let mut s = self.state.lock();
        if let Some(e) = &s.refused {
            return Err(e.clone());
        }
        if s.closed {
            queue.close();
            return Ok(queue);
        }
        if let Some(init) = s.init.as_ref().map(|i| i.chunk.clone()) {
            if format == VideoFormat::Fmp4 {
                queue.offer(init.clone(), None, false);
            }
            for sample in &s.gop {
                if let Some(c) = sample.chunk(format, &init.codec) {
                    queue.offer(c, Some(&init), sample.rasl);
                }
            }
        }
        s.subs.push(Sub {
            queue: queue.clone(),
            format,
        });
        Ok(queue)
    }

    /// The camera stopped: every subscription ends after what it has queued.
    pub fn close(&self) {
        let mut s = self.state.lock();
        s.closed = true;
        s.gop.clear();
        for sub in s.subs.drain(..) {
            sub.queue.close();
        }
    }

    /// How many subscriptions are open.
    #[cfg(test)]
    pub fn subscribers(&self) -> usize {
        self.state.lock().subs.len()
    }
}
