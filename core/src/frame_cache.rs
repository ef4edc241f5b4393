//! The latest picture of one camera, and the JPEGs made from it.
//!
//! Invariants:
//! - The cache holds exactly one picture: the newest decoded (or, for MJPEG cameras,
//!   received) one. Publishing a new picture replaces it; readers that still hold the old
//!   one keep it alive through their `Arc` and nothing else does.
//! - Each (picture, width, quality) is JPEG-encoded at most once. Concurrent readers asking
//!   for the same encoding wait on one `OnceLock`; every reader gets the same `Bytes`.
//! - Sequence numbers increase by one per published picture, starting at 1.
//! - Decoded pictures are full range: the decode thread expands limited range in place
//!   before publishing, so an encode never copies a picture just to expand it.
//! - A released picture keeps its sequence number, capture time and every JPEG made of it;
//!   only its form changes, from raw samples to one full-size JPEG of itself
//!   ([`FrameCache::release_picture`]). Other sizes and qualities are then encoded from
//!   that JPEG, once each, as for an MJPEG camera.
//!
//! Cost: one I420 picture (1.5 bytes per pixel: 3 MB at 1080p) plus its JPEGs (typically
//! 100–300 kB each) per camera; an idle `OnDemand` camera's released picture only its
//! JPEGs. Publishing is a pointer swap under a mutex; the encodes happen on the readers'
//! (blocking) threads, never in the decoder, except the one full-size encode a release
//! may need.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::error::{Error, ErrorKind, Result};
use crate::frame::{Frame, SnapshotOptions};
use crate::jpeg;
use crate::picture::Picture;

/// What the camera gave us.
pub(crate) enum Content {
    /// A decoded H.264 picture, full range.
    Picture(Picture),
    /// A JPEG: from an MJPEG camera, passed through and never decoded unless a resize asks;
    /// or a released picture's full-size encoding.
    Jpeg {
        data: Bytes,
        width: u32,
        height: u32,
        /// The quality camkit encoded it with (a released picture): served as is only at
        /// that quality. `None` for a camera's own JPEG, served as is at any quality.
        quality: Option<u8>,
    },
}

type EncodeKey = (u32, u8);
type Encoded = Arc<OnceLock<Result<(Bytes, u32, u32)>>>;

/// One published picture with its encodings.
pub(crate) struct CachedPicture {
    pub seq: u64,
    pub captured_at: SystemTime,
    pub content: Content,
    /// Shared with the released form of the same picture (see
    /// [`FrameCache::release_picture`]), so a reader still holding the raw form and one
    /// holding the released form wait on the same encodes: still one per (size, quality).
    encodes: Arc<Mutex<Vec<(EncodeKey, Encoded)>>>,
    /// The last encoding a reader asked of this picture (see [`FrameCache::take_prefetch`]).
    asked: Mutex<Option<EncodeKey>>,
}

impl CachedPicture {
    pub fn dimensions(&self) -> (u32, u32) {
        match &self.content {
            Content::Picture(p) => (p.width, p.height),
            Content::Jpeg { width, height, .. } => (*width, *height),
        }
    }

    /// The luma summary when the picture is held decoded (no work beyond sampling).
    pub fn luma_summary_now(&self) -> Option<crate::picture::LumaSummary> {
        match &self.content {
            Content::Picture(p) => Some(p.luma_summary()),
            Content::Jpeg { .. } => None,
        }
    }

    /// The luma summary, decoding a JPEG-form picture for it. Blocks: call from a blocking
    /// context.
    pub fn luma_summary(&self) -> Result<crate::picture::LumaSummary> {
        match &self.content {
            Content::Picture(p) => Ok(p.luma_summary()),
            Content::Jpeg { data, .. } => Ok(jpeg::decode_to_i420(data)?.luma_summary()),
        }
    }

    /// Target width for `max_width` (never upscales).
    fn target_width(&self, max_width: Option<u32>) -> u32 {
        let (w, _) = self.dimensions();
        max_width.map_or(w, |m| m.min(w))
    }

    fn key(&self, opts: &SnapshotOptions, default_quality: u8) -> EncodeKey {
        (
            self.target_width(opts.max_width),
            opts.quality.unwrap_or(default_quality),
        )
    }

    /// Notes that a reader (snapshot, subscriber) wants this encoding of the picture.
    fn mark_asked(&self, key: EncodeKey) {
        *self.asked.lock() = Some(key);
    }

    /// The encoding for `key` if it is already made (no waiting, no work).
    fn ready(&self, key: EncodeKey) -> Option<Result<Frame>> {
        let cell = {
            let g = self.encodes.lock();
            g.iter().find(|(k, _)| *k == key).map(|(_, c)| c.clone())?
        };
        cell.get().map(|r| self.to_frame(r))
    }

    /// The JPEG for an encode key (width already clamped to the picture's), encoding it
    /// now if nobody has yet.
    fn jpeg_for(&self, key: EncodeKey, stats: &CacheStats) -> Result<Frame> {
        let (width, quality) = key;
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
                quality: made_at,
            } => {
                if width >= *w && made_at.is_none_or(|q| q == quality) {
                    // No decode, no encode. A camera's own JPEG is served at the camera's
                    // quality whatever was asked.
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

/// Scales and encodes. Pictures arrive full range (decode thread, JPEG decode); a limited
/// one is still expanded, on the smaller picture when scaling, so the JPEG is right
/// whoever made the picture.
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
struct CacheStats {
    /// JPEG encodes performed; shared with the camera's status, which reports it.
    encodes: Arc<AtomicU64>,
    /// Encodes started ahead of readers (`encode_ahead`), made or found made.
    prefetches: AtomicU64,
}

/// The latest picture of one camera.
pub(crate) struct FrameCache {
    latest: Mutex<Option<Arc<CachedPicture>>>,
    seq: watch::Sender<u64>,
    /// The camera's JPEG quality: what readers get who name none, and what a released
    /// picture is kept at.
    quality: u8,
    stats: CacheStats,
    /// The encoding readers asked of the last pictures in a row, and how many in a row.
    streak: Mutex<(Option<EncodeKey>, u32)>,
    /// A just-published picture to encode ahead of its readers.
    prefetch: Mutex<Option<(Arc<CachedPicture>, EncodeKey)>>,
}

/// After this many pictures in a row were asked for the same encoding, the next picture is
/// encoded as soon as it is published (readers keep up with the camera: a WebSocket client
/// at the camera's rate, a snapshot loop). A reader slower than the camera never makes a
/// streak, so nothing is encoded that nobody asks for.
const PREFETCH_STREAK: u32 = 2;

impl FrameCache {
    /// An empty cache encoding at `quality` by default, counting its encodes in `encodes`.
    pub fn new(quality: u8, encodes: Arc<AtomicU64>) -> Self {
        FrameCache {
            latest: Mutex::new(None),
            seq: watch::Sender::new(0),
            quality,
            stats: CacheStats {
                encodes,
                prefetches: AtomicU64::new(0),
            },
            streak: Mutex::new((None, 0)),
            prefetch: Mutex::new(None),
        }
    }

    /// The JPEG of `pic` for these options (size, quality; the camera's quality when none is
    /// named): from the cache when made already, else encoded on a blocking thread, once
    /// however many readers ask at the same time.
    pub async fn encode(
        self: &Arc<Self>,
        pic: Arc<CachedPicture>,
        opts: SnapshotOptions,
    ) -> Result<Frame> {
        let key = pic.key(&opts, self.quality);
        pic.mark_asked(key);
        if let Some(r) = pic.ready(key) {
            return r;
        }
        let cache = self.clone();
        tokio::task::spawn_blocking(move || cache.encode_blocking(&pic, &opts))
            .await
            .map_err(|_| Error::new(ErrorKind::Internal, "JPEG encoder task failed"))?
    }

    /// [`encode`](Self::encode) on the calling thread: blocks while another thread encodes
    /// the same picture, size and quality.
    pub fn encode_blocking(&self, pic: &CachedPicture, opts: &SnapshotOptions) -> Result<Frame> {
        let key = pic.key(opts, self.quality);
        pic.mark_asked(key);
        pic.jpeg_for(key, &self.stats)
    }

    /// Makes the encoding `key` of `pic` ahead of its readers (see [`Self::take_prefetch`]).
    /// Blocks: call from a blocking context.
    pub fn encode_ahead(&self, pic: &CachedPicture, key: EncodeKey) {
        self.stats.prefetches.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = pic.jpeg_for(key, &self.stats) {
            tracing::debug!(error = %e, "encode ahead failed; readers will see the error");
        }
    }

    /// JPEG encodes made so far.
    #[cfg(test)]
    fn encodes(&self) -> u64 {
        self.stats.encodes.load(Ordering::Relaxed)
    }

    /// Counts the picture being replaced into the streak; the encoding to make of the next
    /// picture ahead of its readers, if the streak is long enough.
    fn note_asked(&self, asked: Option<EncodeKey>) -> Option<EncodeKey> {
        let mut st = self.streak.lock();
        *st = match (asked, st.0) {
            (Some(k), Some(k0)) if k == k0 => (Some(k), st.1 + 1),
            (Some(k), _) => (Some(k), 1),
            (None, _) => (None, 0),
        };
        st.0.filter(|_| st.1 >= PREFETCH_STREAK)
    }

    /// The picture just published and the encoding its readers will ask for, when they
    /// asked for it of the pictures before in a row (`PREFETCH_STREAK`). The publisher
    /// encodes it off its own thread (`encode_ahead`): readers then find it made, or wait
    /// on that one encode, never a second.
    pub fn take_prefetch(&self) -> Option<(Arc<CachedPicture>, EncodeKey)> {
        self.prefetch.lock().take()
    }

    /// Replaces the latest picture and wakes subscribers. Returns its sequence number.
    pub fn publish(&self, content: Content, captured_at: SystemTime) -> u64 {
        let seq = {
            let mut g = self.latest.lock();
            let seq = g.as_ref().map_or(1, |p| p.seq + 1);
            let asked = g.as_ref().and_then(|p| *p.asked.lock());
            let prefetch = self.note_asked(asked);
            let is_picture = matches!(content, Content::Picture(_));
            let pic = Arc::new(CachedPicture {
                seq,
                captured_at,
                content,
                encodes: Arc::new(Mutex::new(Vec::new())),
                asked: Mutex::new(None),
            });
            *self.prefetch.lock() = match prefetch {
                Some((w, q)) if is_picture => {
                    let key = (pic.target_width(Some(w)), q);
                    Some((pic.clone(), key))
                }
                _ => None,
            };
            *g = Some(pic);
            seq
        };
        self.seq.send_replace(seq);
        seq
    }

    /// The latest picture, if any.
    pub fn latest(&self) -> Option<Arc<CachedPicture>> {
        self.latest.lock().clone()
    }

    /// Drops the latest picture's raw samples (3 MB at 1080p), keeping it as a full-size
    /// JPEG of itself: the one already made at any quality, preferring the camera's, else
    /// one encoded now at the camera's quality. Sequence number, capture time and the JPEGs made stay, so
    /// readers and subscribers see the same picture. Readers holding the raw picture keep
    /// it until they let go. Returns whether a picture was released.
    ///
    /// Call from the thread that publishes (the decode thread): a picture published
    /// meanwhile is left alone.
    pub fn release_picture(&self) -> bool {
        let quality = self.quality;
        let Some(cur) = self.latest() else {
            return false;
        };
        let Content::Picture(p) = &cur.content else {
            return false;
        };
        let (width, height) = (p.width, p.height);
        let made = {
            let g = cur.encodes.lock();
            let full: Vec<_> = g
                .iter()
                .filter(|((w, _), _)| *w == width)
                .filter_map(|((_, q), c)| match c.get() {
                    Some(Ok((data, _, _))) => Some((*q, data.clone())),
                    _ => None,
                })
                .collect();
            full.iter()
                .find(|(q, _)| *q == quality)
                .or(full.first())
                .cloned()
        };
        let (q, data) = match made {
            Some(m) => m,
            None => match cur.jpeg_for(cur.key(&SnapshotOptions::full(), quality), &self.stats) {
                Ok(f) => (quality, f.jpeg),
                Err(e) => {
                    tracing::debug!(error = %e, "picture kept: no JPEG of it");
                    return false;
                }
            },
        };
        let mut g = self.latest.lock();
        if g.as_ref().map(|l| l.seq) != Some(cur.seq) {
            return false;
        }
        *g = Some(Arc::new(CachedPicture {
            seq: cur.seq,
            captured_at: cur.captured_at,
            content: Content::Jpeg {
                data,
                width,
                height,
                quality: Some(q),
            },
            encodes: cur.encodes.clone(),
            asked: Mutex::new(*cur.asked.lock()),
        }));
        true
    }

    /// A receiver that sees each new sequence number (latest wins).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.seq.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader's steps one by one, to check each on its own.
    impl CachedPicture {
        fn jpeg(&self, opts: &SnapshotOptions, quality: u8, stats: &CacheStats) -> Result<Frame> {
            self.jpeg_for(self.key(opts, quality), stats)
        }

        fn ready_opts(&self, opts: &SnapshotOptions, quality: u8) -> Option<Result<Frame>> {
            self.ready(self.key(opts, quality))
        }

        fn mark_asked_opts(&self, opts: &SnapshotOptions) {
            self.mark_asked(self.key(opts, 80));
        }
    }

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

    /// Readers that ask for every picture get the next one encoded ahead; a reader that
    /// skips pictures, a change of size, or an MJPEG camera does not.
    #[test]
    fn pictures_are_encoded_ahead_only_for_readers_that_keep_up() {
        let cache = FrameCache::new(80, Default::default());
        let t = SystemTime::now();
        let small = SnapshotOptions::full().max_width(320);
        let publish_asked = |opts: Option<&SnapshotOptions>| {
            cache.publish(Content::Picture(pic(640, 360)), t);
            if let Some(o) = opts {
                cache.latest().unwrap().mark_asked_opts(o);
            }
            cache.take_prefetch().map(|(p, k)| (p.seq, k))
        };
        assert_eq!(publish_asked(Some(&small)), None); // 1: nothing asked before it
        assert_eq!(publish_asked(Some(&small)), None); // 2: one asked in a row
        assert_eq!(publish_asked(Some(&small)), Some((3, (320, 80)))); // two in a row
        assert_eq!(publish_asked(None), Some((4, (320, 80))));
        // 4 was not asked for: the streak is broken.
        assert_eq!(publish_asked(Some(&small)), None);
        assert_eq!(publish_asked(Some(&SnapshotOptions::full())), None);
        // Another size restarts the count.
        assert_eq!(publish_asked(Some(&SnapshotOptions::full())), None);
        let (p, key) = {
            cache.publish(Content::Picture(pic(640, 360)), t);
            cache.take_prefetch().expect("two full-size in a row")
        };
        assert_eq!(key, (640, 80));
        // Encoded ahead, then asked: one encode, the same bytes.
        let before = cache.encodes();
        cache.encode_ahead(&p, key);
        let f = p
            .ready(p.key(&SnapshotOptions::full(), 80))
            .unwrap()
            .unwrap();
        let g = cache.encode_blocking(&p, &SnapshotOptions::full()).unwrap();
        assert_eq!(f.jpeg.as_ptr(), g.jpeg.as_ptr());
        assert_eq!(cache.encodes() - before, 1);
        // MJPEG pictures are passed through, never encoded ahead.
        for _ in 0..4 {
            cache.publish(
                Content::Jpeg {
                    data: Bytes::from_static(b"jpeg"),
                    width: 640,
                    height: 360,
                    quality: None,
                },
                t,
            );
            cache
                .latest()
                .unwrap()
                .mark_asked_opts(&SnapshotOptions::full());
            assert!(cache.take_prefetch().is_none());
        }
    }

    #[test]
    fn one_encode_per_picture_and_size_however_many_readers() {
        let cache = Arc::new(FrameCache::new(80, Default::default()));
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
        assert_eq!(cache.encodes(), 1);
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
        assert_eq!(cache.encodes(), 2);
        assert!(latest
            .ready_opts(&SnapshotOptions::full().max_width(320), 80)
            .is_some());
        assert!(latest
            .ready_opts(&SnapshotOptions::full().quality(50), 80)
            .is_none());
        // max_width above the picture's width is the full-size encoding.
        latest
            .jpeg(&SnapshotOptions::full().max_width(4000), 80, &cache.stats)
            .unwrap();
        assert_eq!(cache.encodes(), 2);
    }

    #[test]
    fn publish_replaces_and_numbers() {
        let cache = FrameCache::new(80, Default::default());
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

    fn encodes(cache: &FrameCache) -> u64 {
        cache.encodes()
    }

    #[test]
    fn released_picture_keeps_seq_and_jpegs_and_serves_every_size() {
        let cache = FrameCache::new(80, Default::default());
        let t = SystemTime::now();
        cache.publish(Content::Picture(pic(640, 360)), t);
        cache.publish(Content::Picture(pic(640, 360)), t);
        let before = cache.latest().unwrap();
        let small = before
            .jpeg(&SnapshotOptions::full().max_width(320), 80, &cache.stats)
            .unwrap();
        assert_eq!(encodes(&cache), 1);
        // No full-size JPEG yet: the release makes one at the quality given.
        assert!(cache.release_picture());
        assert_eq!(encodes(&cache), 2);
        let after = cache.latest().unwrap();
        assert_eq!((after.seq, after.captured_at), (2, t));
        assert_eq!(after.dimensions(), (640, 360));
        assert!(matches!(
            after.content,
            Content::Jpeg {
                quality: Some(80),
                ..
            }
        ));
        // What was made stays made: same bytes, no encode.
        let again = after.ready_opts(&SnapshotOptions::full().max_width(320), 80);
        assert_eq!(again.unwrap().unwrap().jpeg.as_ptr(), small.jpeg.as_ptr());
        let full = after
            .jpeg(&SnapshotOptions::full(), 80, &cache.stats)
            .unwrap();
        assert_eq!((full.width, full.height, full.seq), (640, 360, 2));
        assert_eq!(encodes(&cache), 2);
        // Another size or quality is made from the JPEG, and looks like the picture.
        let q50 = after
            .jpeg(&SnapshotOptions::full().quality(50), 80, &cache.stats)
            .unwrap();
        let tiny = after
            .jpeg(&SnapshotOptions::full().max_width(160), 80, &cache.stats)
            .unwrap();
        assert_eq!(encodes(&cache), 4);
        assert_ne!(q50.jpeg, full.jpeg);
        assert_eq!((tiny.width, tiny.height), (160, 90));
        let back = jpeg::decode_to_i420(&q50.jpeg).unwrap();
        assert_eq!((back.width, back.height), (640, 360));
        let Content::Picture(orig) = &before.content else {
            panic!("the old reader keeps the raw picture");
        };
        assert!(orig.luma_change(&back).unwrap() < 4.0);
        // Nothing left to release.
        assert!(!cache.release_picture());
    }

    #[test]
    fn release_reuses_a_full_size_jpeg_of_any_quality() {
        let cache = FrameCache::new(80, Default::default());
        cache.publish(Content::Picture(pic(64, 48)), SystemTime::now());
        let q90 = cache
            .latest()
            .unwrap()
            .jpeg(&SnapshotOptions::full().quality(90), 80, &cache.stats)
            .unwrap();
        assert!(cache.release_picture());
        assert_eq!(encodes(&cache), 1);
        let latest = cache.latest().unwrap();
        let same = latest
            .jpeg(&SnapshotOptions::full().quality(90), 80, &cache.stats)
            .unwrap();
        assert_eq!(same.jpeg.as_ptr(), q90.jpeg.as_ptr());
        // The default quality was not made: made now, from the q90 JPEG.
        let q80 = latest
            .jpeg(&SnapshotOptions::full(), 80, &cache.stats)
            .unwrap();
        assert_ne!(q80.jpeg, q90.jpeg);
        assert_eq!(encodes(&cache), 2);
    }

    #[test]
    fn release_leaves_mjpeg_and_empty_caches_alone() {
        let cache = FrameCache::new(80, Default::default());
        assert!(!cache.release_picture());
        let data = jpeg::encode_i420(&pic(64, 48), 75).unwrap();
        cache.publish(
            Content::Jpeg {
                data,
                width: 64,
                height: 48,
                quality: None,
            },
            SystemTime::now(),
        );
        assert!(!cache.release_picture());
        assert_eq!(encodes(&cache), 0);
    }

    #[test]
    fn mjpeg_passes_through_without_encode() {
        let cache = FrameCache::new(80, Default::default());
        let data = jpeg::encode_i420(&pic(64, 48), 75).unwrap();
        cache.publish(
            Content::Jpeg {
                data: data.clone(),
                width: 64,
                height: 48,
                quality: None,
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
