//! The latest picture of one camera, and the JPEGs made from it.
//!
//! Invariants:
//! - The cache holds exactly one picture: the newest decoded (or, for MJPEG cameras,
//!   received) one. Publishing a new picture replaces it; readers that still hold the old
//!   one keep it alive through their `Arc` and nothing else does.
//! - Each (picture, width, quality) is JPEG-encoded at most once. Concurrent readers asking
//!   for the same encoding wait on one `OnceLock`; every reader gets the same `Bytes`.
//! - Sequence numbers increase by one per published picture, starting at 1.
//!
//! Cost: one I420 picture (1.5 bytes per pixel: 3 MB at 1080p) plus its JPEGs (typically
//! 100–300 kB each) per camera. Publishing is a pointer swap under a mutex; the encodes
//! happen on the readers' (blocking) threads, never in the decoder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::error::Result;
use crate::frame::{Frame, SnapshotOptions};
use crate::jpeg;
use crate::picture::Picture;

/// What the camera gave us.
pub(crate) enum Content {
    /// A decoded H.264 picture.
    Picture(Picture),
    /// A JPEG passed through from an MJPEG camera, never decoded unless a resize asks.
    Jpeg {
        data: Bytes,
        width: u32,
        height: u32,
    },
}

type EncodeKey = (u32, u8);
type Encoded = Arc<OnceLock<Result<(Bytes, u32, u32)>>>;

/// One published picture with its encodings.
pub(crate) struct CachedPicture {
    pub seq: u64,
    pub captured_at: SystemTime,
    pub content: Content,
    encodes: Mutex<Vec<(EncodeKey, Encoded)>>,
}

impl CachedPicture {
    pub fn dimensions(&self) -> (u32, u32) {
        match &self.content {
            Content::Picture(p) => (p.width, p.height),
            Content::Jpeg { width, height, .. } => (*width, *height),
        }
    }

    /// Target width for `max_width` (never upscales).
    fn target_width(&self, max_width: Option<u32>) -> u32 {
        let (w, _) = self.dimensions();
        max_width.map_or(w, |m| m.min(w))
    }

    /// The encoding for these options if it is already made (no waiting, no work).
    pub fn ready(&self, opts: &SnapshotOptions, default_quality: u8) -> Option<Result<Frame>> {
        let key = (
            self.target_width(opts.max_width),
            opts.quality.unwrap_or(default_quality),
        );
        let cell = {
            let g = self.encodes.lock();
            g.iter().find(|(k, _)| *k == key).map(|(_, c)| c.clone())?
        };
        cell.get().map(|r| self.to_frame(r))
    }

    /// The JPEG for these options, encoding it now if nobody has yet. Blocks while
    /// another thread encodes the same key: call from a blocking context.
    pub fn jpeg(
        &self,
        opts: &SnapshotOptions,
        default_quality: u8,
        stats: &CacheStats,
    ) -> Result<Frame> {
        let width = self.target_width(opts.max_width);
        let quality = opts.quality.unwrap_or(default_quality);
        let key = (width, quality);
        let cell = {
            let mut g = self.encodes.lock();
            match g.iter().find(|(k, _)| *k == key) {
                Some((_, c)) => c.clone(),
                None => {
                    let c: Encoded = Arc::new(OnceLock::new());
                    g.push((key, c.clone()));
                    c
                }
            }
        };
        let r = cell.get_or_init(|| self.encode(width, quality, stats));
        self.to_frame(r)
    }

    fn to_frame(&self, r: &Result<(Bytes, u32, u32)>) -> Result<Frame> {
        let (jpeg, width, height) = r.clone()?;
        Ok(Frame {
            jpeg,
            width,
            height,
            seq: self.seq,
            captured_at: self.captured_at,
        })
    }

    fn encode(&self, width: u32, quality: u8, stats: &CacheStats) -> Result<(Bytes, u32, u32)> {
        match &self.content {
            Content::Picture(p) => {
                stats.encodes.fetch_add(1, Ordering::Relaxed);
                encode_scaled(p, width, quality)
            }
            Content::Jpeg {
                data,
                width: w,
                height: h,
            } => {
                if width >= *w {
                    // The camera's own JPEG: no decode, no encode. Quality is the camera's.
                    Ok((data.clone(), *w, *h))
                } else {
                    stats.encodes.fetch_add(1, Ordering::Relaxed);
                    let p = jpeg::decode_to_i420(data)?;
                    encode_scaled(&p, width, quality)
                }
            }
        }
    }
}

/// Scales, expands limited range (JPEG is full range), encodes. The expansion runs on the
/// smaller picture when scaling, and only once per (picture, size) like the encode.
fn encode_scaled(p: &Picture, width: u32, quality: u8) -> Result<(Bytes, u32, u32)> {
    let out = match p.downscaled(width) {
        Some(mut small) => {
            small.expand_range();
            small
        }
        None if p.full_range => return Ok((jpeg::encode_i420(p, quality)?, p.width, p.height)),
        None => p.to_full_range(),
    };
    Ok((jpeg::encode_i420(&out, quality)?, out.width, out.height))
}

/// Counters about the cache's work.
#[derive(Default)]
pub(crate) struct CacheStats {
    /// JPEG encodes performed.
    pub encodes: AtomicU64,
}

/// The latest picture of one camera.
pub(crate) struct FrameCache {
    latest: Mutex<Option<Arc<CachedPicture>>>,
    seq: watch::Sender<u64>,
    pub stats: CacheStats,
}

impl FrameCache {
    pub fn new() -> Self {
        FrameCache {
            latest: Mutex::new(None),
            seq: watch::Sender::new(0),
            stats: CacheStats::default(),
        }
    }

    /// Replaces the latest picture and wakes subscribers. Returns its sequence number.
    pub fn publish(&self, content: Content, captured_at: SystemTime) -> u64 {
        let seq = {
            let mut g = self.latest.lock();
            let seq = g.as_ref().map_or(1, |p| p.seq + 1);
            *g = Some(Arc::new(CachedPicture {
                seq,
                captured_at,
                content,
                encodes: Mutex::new(Vec::new()),
            }));
            seq
        };
        self.seq.send_replace(seq);
        seq
    }

    /// The latest picture, if any.
    pub fn latest(&self) -> Option<Arc<CachedPicture>> {
        self.latest.lock().clone()
    }

    /// A receiver that sees each new sequence number (latest wins).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.seq.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pic(w: u32, h: u32) -> Picture {
        let (cw, ch) = Picture::chroma_dims(w, h);
        Picture {
            width: w,
            height: h,
            y: (0..w * h).map(|i| (i % 251) as u8).collect(),
            u: vec![100; (cw * ch) as usize],
            v: vec![150; (cw * ch) as usize],
            full_range: true,
        }
    }

    #[test]
    fn one_encode_per_picture_and_size_however_many_readers() {
        let cache = Arc::new(FrameCache::new());
        cache.publish(Content::Picture(pic(640, 360)), SystemTime::now());
        let latest = cache.latest().unwrap();
        let mut handles = Vec::new();
        for _ in 0..8 {
            let latest = latest.clone();
            let cache = cache.clone();
            handles.push(std::thread::spawn(move || {
                latest
                    .jpeg(&SnapshotOptions::full(), 80, &cache.stats)
                    .unwrap()
            }));
        }
        let frames: Vec<Frame> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(cache.stats.encodes.load(Ordering::Relaxed), 1);
        // Every reader shares the same bytes (same allocation).
        for f in &frames {
            assert_eq!(f.jpeg.as_ptr(), frames[0].jpeg.as_ptr());
            assert_eq!((f.width, f.height, f.seq), (640, 360, 1));
        }
        // A second size is a second encode; asking again is not.
        let small = latest
            .jpeg(&SnapshotOptions::full().max_width(320), 80, &cache.stats)
            .unwrap();
        assert_eq!((small.width, small.height), (320, 180));
        latest
            .jpeg(&SnapshotOptions::full().max_width(320), 80, &cache.stats)
            .unwrap();
        assert_eq!(cache.stats.encodes.load(Ordering::Relaxed), 2);
        assert!(latest
            .ready(&SnapshotOptions::full().max_width(320), 80)
            .is_some());
        assert!(latest
            .ready(&SnapshotOptions::full().quality(50), 80)
            .is_none());
        // max_width above the picture's width is the full-size encoding.
        latest
            .jpeg(&SnapshotOptions::full().max_width(4000), 80, &cache.stats)
            .unwrap();
        assert_eq!(cache.stats.encodes.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn publish_replaces_and_numbers() {
        let cache = FrameCache::new();
        let mut rx = cache.watch();
        assert!(cache.latest().is_none());
        assert_eq!(
            cache.publish(Content::Picture(pic(32, 32)), SystemTime::now()),
            1
        );
        let first = cache.latest().unwrap();
        assert_eq!(
            cache.publish(Content::Picture(pic(32, 32)), SystemTime::now()),
            2
        );
        assert_eq!(*rx.borrow_and_update(), 2);
        assert_eq!(cache.latest().unwrap().seq, 2);
        // An old reader keeps its picture.
        assert_eq!(first.seq, 1);
    }

    #[test]
    fn mjpeg_passes_through_without_encode() {
        let cache = FrameCache::new();
        let data = jpeg::encode_i420(&pic(64, 48), 75).unwrap();
        cache.publish(
            Content::Jpeg {
                data: data.clone(),
                width: 64,
                height: 48,
            },
            SystemTime::now(),
        );
        let f = cache
            .latest()
            .unwrap()
            .jpeg(&SnapshotOptions::full(), 80, &cache.stats)
            .unwrap();
        assert_eq!(f.jpeg, data);
        let small = cache
            .latest()
            .unwrap()
            .jpeg(&SnapshotOptions::full().max_width(32), 80, &cache.stats)
            .unwrap();
        assert_eq!((small.width, small.height), (32, 24));
    }
}
