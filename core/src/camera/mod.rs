//! One camera: its lifecycle task (connect, stream, reconnect with backoff, stop), its
//! decode thread, its frame cache and status.

mod classify;
mod damage;
mod decode_worker;
mod demand;
mod frame_cache;
mod session;
mod sub_stream;

pub(crate) use self::frame_cache::CachedPicture;
pub(crate) use self::sub_stream::Started;
use self::sub_stream::StreamLink;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use retina::client::SessionGroup;
use tokio::sync::{broadcast, oneshot, watch};

use self::damage::{DamageGate, Verdict};
use self::decode_worker::{EncodedFrame, Msg, StreamFacts, VideoCodec, WorkerHandle};
use self::demand::Demand;
use self::frame_cache::FrameCache;
use self::session::{Opener, RtspOpener, StreamItem};
use crate::address::Source;
use crate::backoff::Backoff;
use crate::config::{CameraConfig, DecodePolicy};
use crate::decode::DecoderBackend;
use crate::error::{Error, ErrorKind, Result};
use crate::events::CameraEvent;
use crate::frame::{Frame, SnapshotOptions};
use crate::status::{CameraState, CameraStatus, StatusCell};
use crate::util::{epoch_ms, fmt_duration};

/// Stream errors in a row, with no video between them, after which the session ends
/// whatever `frame_timeout` says: more than a frame joined in its middle yields (one per
/// remaining packet: a 4K keyframe is under a thousand packets).
const MAX_ERRORS_IN_ROW: u32 = 2000;

/// The shared parts of a camera, held by the manager, subscriptions and the tasks. The
/// layers above reach the pipeline only through its methods.
pub(crate) struct Camera {
    id: String,
    config: CameraConfig,
    status: Arc<StatusCell>,
    cache: Arc<FrameCache>,
    demand: Arc<Demand>,
    /// The compressed frames for video subscribers (fMP4, Annex B).
    video: crate::video::VideoHub,
    worker: std::sync::mpsc::SyncSender<Msg>,
    /// `true` once the camera is stopped; the lifecycle task and subscriptions watch it.
    stop: watch::Sender<bool>,
    /// The sub-stream: a camera of its own (session, decode thread, cache, demand,
    /// status), stopped with this one; see [`pick`](Self::pick).
    sub: Option<Arc<Camera>>,
}

impl Camera {
    /// Creates the camera and its decode thread, and starts its lifecycle task on the
    /// camera's RTSP stream. `first` receives the outcome of the first attempt.
    ///
    /// The decoder choice is resolved here (loading libavcodec the first time): asking for
    /// one that cannot be loaded fails before anything starts, naming `decoder`.
    ///
    /// With a `sub_stream` in the config, the sub-stream starts too, as a camera of its own
    /// with the same settings: always retrying (a failed sub-stream never fails the
    /// camera), its state changes not sent as the camera's events.
    pub fn start(
        config: CameraConfig,
        source: Source,
        group: Arc<SessionGroup>,
        events: broadcast::Sender<CameraEvent>,
        rt: &tokio::runtime::Handle,
    ) -> Result<Started> {
        let decoder = DecoderBackend::resolve(config.decoder)?;
        let (link, sub_first) = match config.sub_source(&source)? {
            Some(sub_source) => {
                let (release, gate) = watch::channel(false);
                let (sub, first) = Self::start_sub(&config, sub_source, &group, decoder, gate, rt)?;
                (StreamLink::main(sub, release), Some(first))
            }
            None => (StreamLink::default(), None),
        };
        let origin = Origin::rtsp(source, &config, group, decoder);
        let (camera, first) = Self::start_with(config, origin, link, events, rt)?;
        Ok(Started {
            camera,
            first,
            sub_first,
        })
    }

    /// [`start`](Self::start) on any stream source; `link` ties a main stream and its
    /// sub-stream together.
    fn start_with(
        config: CameraConfig,
        origin: Origin,
        link: StreamLink,
        events: broadcast::Sender<CameraEvent>,
        rt: &tokio::runtime::Handle,
    ) -> Result<(Arc<Camera>, oneshot::Receiver<Result<()>>)> {
        let status = Arc::new(StatusCell::new(
            &config.id,
            &origin.url,
            config.transport,
            config.decode,
            origin.decoder,
        ));
        let cache = Arc::new(FrameCache::new(
            config.jpeg_quality,
            status.jpeg_encodes.clone(),
        ));
        let demand = Arc::new(Demand::new(config.decode, config.decode_grace));
        let worker = match decode_worker::spawn(
            rt.clone(),
            &config.id,
            cache.clone(),
            status.clone(),
            demand.clone(),
        ) {
            Ok(w) => w,
            Err(e) => {
                if let Some(sub) = &link.sub {
                    sub.stop();
                }
                return Err(e);
            }
        };
        let (stop, stop_rx) = watch::channel(false);
        let camera = Arc::new(Camera {
            id: config.id.clone(),
            config: config.clone(),
            status,
            cache,
            demand,
            video: Default::default(),
            worker: worker.sender(),
            stop,
            sub: link.sub,
        });
        let (first_tx, first_rx) = oneshot::channel();
        let task = Lifecycle {
            camera: camera.clone(),
            opener: origin.opener,
            endpoint: origin.endpoint,
            decoder: origin.decoder,
            events,
            worker,
            first: Some(first_tx),
            backoff: Backoff::new(config.backoff_initial, config.backoff_max),
            last_immediate: None,
            release: link.release,
            gate: link.gate,
        };
        rt.spawn(task.run(stop_rx));
        Ok((camera, first_rx))
    }

    /// Stops the camera: ends its task (which tears the RTSP session down) and thread,
    /// and its sub-stream's.
    pub fn stop(&self) {
        self.stop.send_replace(true);
        if let Some(sub) = &self.sub {
            sub.stop();
        }
    }

    /// The camera's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Resolves once the camera is stopped.
    pub async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// The camera's video fan-out, for video subscriptions.
    pub fn video(&self) -> &crate::video::VideoHub {
        &self.video
    }

    pub fn stop_watch(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Where the camera is in its life.
    pub fn state(&self) -> CameraState {
        self.status.state()
    }

    /// The camera's status now, with the age of its latest picture.
    pub fn status(&self) -> CameraStatus {
        let mut s = self.status.snapshot();
        if let Some(p) = self.cache.latest() {
            s.picture_age_ms = Some(
                SystemTime::now()
                    .duration_since(p.captured_at)
                    .unwrap_or_default()
                    .as_millis() as u64,
            );
            s.picture_stale = s.video_lost_since_ms.is_some();
        }
        s.sub_stream = self.sub_status();
        s
    }

    /// A subscriber arrives: the camera decodes every frame until it leaves
    /// ([`unsubscribe`](Self::unsubscribe)). Returns a receiver of each new picture's
    /// sequence number.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.demand.add_subscriber();
        self.cache.watch()
    }

    /// A subscriber left.
    pub fn unsubscribe(&self) {
        self.demand.remove_subscriber();
    }

    /// The picture in the frame cache now, as it is (no catch-up).
    pub fn cached_picture(&self) -> Option<Arc<CachedPicture>> {
        self.cache.latest()
    }

    pub fn set_decode(&self, p: DecodePolicy) {
        self.demand.set_policy(p);
        self.status.set_decode(p);
    }

    /// The latest picture of this stream as JPEG, decoding what the policy left
    /// undecoded; within the config's snapshot bound.
    async fn snapshot_here(&self, opts: SnapshotOptions) -> Result<Frame> {
        let bound = self.config.snapshot_bound();
        let snapshot = async {
            let pic = self.picture_now().await?;
            self.encode(pic, opts).await
        };
        self.within(bound, snapshot, no_picture_within).await
    }

    /// The latest picture, decoded up to now (what a snapshot encodes), without encoding;
    /// within the config's snapshot bound.
    pub async fn latest_picture(&self) -> Result<Arc<CachedPicture>> {
        let bound = self.config.snapshot_bound();
        self.within(bound, self.picture_now(), no_picture_within)
            .await
    }

    /// `fut` within `bound`, else a `Timeout` for this camera that `says` what did not
    /// happen within the (formatted) bound.
    async fn within<T>(
        &self,
        bound: Duration,
        fut: impl std::future::Future<Output = Result<T>>,
        says: fn(&str) -> String,
    ) -> Result<T> {
        match tokio::time::timeout(bound, fut).await {
            Ok(r) => r,
            Err(_) => {
                Err(Error::new(ErrorKind::Timeout, says(&fmt_duration(bound))).for_camera(&self.id))
            }
        }
    }

    async fn picture_now(&self) -> Result<Arc<CachedPicture>> {
        let state = self.status.state();
        if state == CameraState::Reconnecting {
            // The last good picture beats none while the camera comes back; the status
            // says it is stale and how old.
            if let Some(p) = self.cache.latest() {
                return Ok(p);
            }
        }
        if state != CameraState::Streaming {
            let why = self
                .status
                .last_error()
                .map(|e| format!(" (last error: {})", e.message))
                .unwrap_or_default();
            return Err(Error::new(
                ErrorKind::NoFrame,
                format!("no picture: the camera is {}{why}", state.as_str()),
            )
            .for_camera(&self.id));
        }
        let idle = self.demand.policy() == DecodePolicy::OnDemand && !self.demand.active();
        // Grace before the catch-up too: an idle camera's decode thread releases its decoder
        // and picture, and must not do so between this catch-up and the encode.
        self.demand.after_snapshot();
        // Also catch up when nothing was decoded yet: a camera that first streams after a
        // failed first attempt (persistent) is `Streaming` from its first keyframe, which
        // the decode thread may not have decoded yet whatever the policy.
        if idle || self.cache.latest().is_none() {
            if let Err(e) = self.catch_up().await {
                // Every buffered frame damaged (packet loss, corrupt slices) or the decoder
                // late: the last good picture beats no picture. Only with none is it an error.
                if self.cache.latest().is_none() {
                    return Err(e);
                }
                tracing::debug!(camera = %self.id, error = %e, "catch-up failed; serving the last picture");
            }
        }
        // And again from now: the grace counts from the picture, however long it took.
        self.demand.after_snapshot();
        self.cache.latest().ok_or_else(|| {
            Error::new(
                ErrorKind::NoFrame,
                "no picture decoded yet; retry in a moment",
            )
            .for_camera(&self.id)
        })
    }

    /// Asks the decode thread to decode everything buffered.
    async fn catch_up(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.worker.try_send(Msg::CatchUp(tx)).map_err(|_| {
            Error::new(ErrorKind::Decode, "decoder is overloaded; retry").for_camera(&self.id)
        })?;
        // Three quarters of the snapshot's bound: when decoding is that late, the rest is
        // left to serve (encode) the last good picture instead.
        let bound = self.config.snapshot_bound().mul_f64(0.75);
        let decoded = async { rx.await.unwrap_or_else(|_| Err(Error::closed())) };
        self.within(bound, decoded, |d| {
            format!("decoding the buffered pictures took longer than {d}")
        })
        .await
        .map_err(|e| e.for_camera(&self.id))
    }

    /// JPEG of a cached picture: from the cache when made already, else encoded on a
    /// blocking thread (once, however many ask at the same time).
    pub async fn encode(&self, pic: Arc<CachedPicture>, opts: SnapshotOptions) -> Result<Frame> {
        self.cache
            .encode(pic, opts)
            .await
            .map_err(|e| e.for_camera(&self.id))
    }
}

fn no_picture_within(bound: &str) -> String {
    format!("no picture within {bound}; retry, or raise snapshotTimeoutMs")
}

/// Where a camera's video comes from, and what is known of it before opening.
struct Origin {
    /// The URL without credentials, for the status.
    url: String,
    /// `rtsp://host:port/path`, for messages.
    endpoint: String,
    decoder: DecoderBackend,
    opener: Box<dyn Opener>,
}

impl Origin {
    /// An RTSP camera at `source`.
    fn rtsp(
        source: Source,
        config: &CameraConfig,
        group: Arc<SessionGroup>,
        decoder: DecoderBackend,
    ) -> Self {
        Origin {
            url: source.url().as_str().to_owned(),
            endpoint: session::endpoint(source.url()),
            decoder,
            opener: Box::new(RtspOpener {
                source,
                config: config.clone(),
                group,
                decoder,
            }),
        }
    }
}

/// The task that keeps one camera streaming.
struct Lifecycle {
    camera: Arc<Camera>,
    opener: Box<dyn Opener>,
    endpoint: String,
    decoder: DecoderBackend,
    events: broadcast::Sender<CameraEvent>,
    worker: WorkerHandle,
    first: Option<oneshot::Sender<Result<()>>>,
    backoff: Backoff,
    /// When a broken stream was last reopened without waiting.
    last_immediate: Option<Instant>,
    /// A main stream's: lets its sub-stream open, once this stream first plays.
    release: Option<watch::Sender<bool>>,
    /// A sub-stream's: opens only once its main stream first played, so that a camera
    /// that serves one session gives it to the main stream.
    gate: Option<watch::Receiver<bool>>,
}

impl Lifecycle {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let id = self.camera.id.clone();
        self.emit(CameraState::Connecting);
        if let Some(mut gate) = self.gate.take() {
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => {}
                // A dropped sender: the main camera is gone, and stops this one too.
                _ = gate.wait_for(|open| *open) => {}
            }
        }
        loop {
            let outcome = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                r = self.stream_once() => r,
            };
            let e = outcome.for_camera(&id);
            self.camera.status.set_error(&e);
            if !self.camera.config.persistent {
                if let Some(first) = self.first.take() {
                    let _ = first.send(Err(e));
                    break;
                }
            }
            let was_streaming = self.camera.status.state() == CameraState::Streaming;
            if was_streaming {
                self.camera.status.video_lost();
            }
            // A stream that broke after it played (a dropped session, a depacketization
            // error it did not survive) is reopened at once: every moment without video
            // counts. Only once per `backoff_max`, so a camera that keeps dropping its
            // clients right after PLAY is retried with the backoff, as any failure.
            let immediate = was_streaming
                && self
                    .last_immediate
                    .is_none_or(|t| t.elapsed() >= self.camera.config.backoff_max);
            let delay = if immediate {
                self.last_immediate = Some(Instant::now());
                Duration::ZERO
            } else {
                self.backoff.next_delay(e.kind())
            };
            tracing::warn!(camera = %id, error = %e, retry_in_ms = delay.as_millis() as u64, "camera stream failed");
            self.set_state(CameraState::Reconnecting);
            if let Some(first) = self.first.take() {
                // A persistent camera stays; connect reports its state and last error.
                let _ = first.send(Ok(()));
            }
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(delay) => {}
            }
            self.camera
                .status
                .reconnects
                .fetch_add(1, Ordering::Relaxed);
        }
        self.set_state(CameraState::Stopped);
        self.camera.video.close();
        tracing::debug!(camera = %id, "camera task ends");
        // Dropping `self.worker` closes the decode thread's queue: it ends too.
    }

    fn set_state(&self, state: CameraState) {
        if self.camera.status.set_state(state) {
            self.emit(state);
        }
    }

    fn emit(&self, state: CameraState) {
        let error = match state {
            CameraState::Reconnecting => self.camera.status.last_error(),
            _ => None,
        };
        // No receiver is fine: events are for whoever listens.
        let _ = self.events.send(CameraEvent {
            camera_id: self.camera.id.clone(),
            state,
            error,
            at_ms: epoch_ms(SystemTime::now()),
        });
    }

    /// One session: open, stream until it fails. Always returns the error that ended it.
    async fn stream_once(&mut self) -> Error {
        let open = match self.opener.open().await {
            Ok(o) => o,
            Err(e) => return e,
        };
        let mut stream = open.stream;
        // The range in force travels with each frame; new parameters mid-stream may change it.
        let mut full_range = open.params.full_range;
        self.camera.status.set_info(open.params.info);
        self.worker.new_stream(StreamFacts {
            codec: open.codec,
            decoder: self.decoder,
        });
        match open.codec.decoded() {
            Some(codec) => self.camera.video.new_session(codec),
            None => self.camera.video.refuse(&self.camera.id, "MJPEG"),
        }
        let endpoint = &self.endpoint;
        let frame_timeout = self.camera.config.frame_timeout;
        let mut got_first = false;
        let mut gate = DamageGate::new(open.codec);
        // The first error since video last flowed, and when: the session's error if no
        // video follows it within `frame_timeout`.
        let mut damage: Option<(Error, Instant)> = None;
        let mut errors_in_row = 0u32;
        // The watchdog counts from the last video frame: RTCP sender reports and other
        // tracks keep arriving from a camera whose encoder has stopped, and must not keep
        // its session open.
        let mut video_deadline = tokio::time::Instant::now() + frame_timeout;
        loop {
            let item = match tokio::time::timeout_at(video_deadline, stream.next_item()).await {
                Err(_) => {
                    if let Some((e, _)) = damage {
                        return e;
                    }
                    return Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "no video from {endpoint} for {} although the session is open; reconnecting",
                            fmt_duration(frame_timeout)
                        ),
                    )
                    .at_step(crate::error::RtspStep::Stream);
                }
                Ok(None) => {
                    if let Some((e, _)) = damage {
                        return e;
                    }
                    return Error::new(
                        ErrorKind::Unreachable,
                        format!("{endpoint} ended the stream"),
                    )
                    .at_step(crate::error::RtspStep::Stream);
                }
                Ok(Some(Err(e))) => return e,
                Ok(Some(Ok(item))) => item,
            };
            let f = match item {
                StreamItem::Video(f) => {
                    video_deadline = tokio::time::Instant::now() + frame_timeout;
                    f
                }
                StreamItem::Other => continue,
                StreamItem::Damaged(e) => {
                    self.camera.status.video_lost();
                    if gate.on_error() {
                        self.camera
                            .status
                            .partial_frames_skipped
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(camera = %self.camera.id, error = %e, "incomplete frame skipped");
                    }
                    errors_in_row += 1;
                    let since = damage.get_or_insert((e, Instant::now())).1;
                    // An error retina repeats without reading anything new (a framing error
                    // on the RTSP connection) would come back at once, forever: bounded by
                    // count as well as by time.
                    if since.elapsed() >= frame_timeout || errors_in_row > MAX_ERRORS_IN_ROW {
                        return damage.map(|(e, _)| e).expect("set above");
                    }
                    continue;
                }
            };
            damage = None;
            errors_in_row = 0;
            if let Some(params) = f.new_params {
                full_range = params.full_range;
                self.camera.status.update_params(params.info);
            }
            if f.loss > 0 {
                tracing::debug!(camera = %self.camera.id, lost = f.loss, "RTP packets lost");
            }
            let keyframe = f.keyframe;
            let data = f.data;
            self.camera.status.on_frame(data.len());
            match gate.on_frame(keyframe, f.loss, &data) {
                Verdict::Deliver => self.camera.status.video_flows(),
                Verdict::SkipPartial => {
                    self.camera.status.video_lost();
                    self.camera
                        .status
                        .partial_frames_skipped
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Verdict::SkipUntilKeyframe => {
                    self.camera.status.video_lost();
                    self.camera
                        .status
                        .frames_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            if open.codec != VideoCodec::Jpeg {
                self.camera
                    .video
                    .push(&data, keyframe, f.rtp_timestamp, f.clock_rate);
            }
            let sent = self.worker.send_frame(EncodedFrame {
                data,
                keyframe,
                captured_at: SystemTime::now(),
                full_range,
            });
            if !sent {
                self.camera
                    .status
                    .frames_dropped
                    .fetch_add(1, Ordering::Relaxed);
            }
            if !got_first && keyframe {
                got_first = true;
                self.backoff.reset();
                self.set_state(CameraState::Streaming);
                if let Some(release) = self.release.take() {
                    release.send_replace(true);
                }
                if let Some(first) = self.first.take() {
                    // The first picture is decoded before connect returns, so a snapshot
                    // right after connect has something to show.
                    let _ = self.first_picture().await;
                    let _ = first.send(Ok(()));
                }
            }
        }
    }

    async fn first_picture(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.worker.sender().try_send(Msg::CatchUp(tx));
        let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
