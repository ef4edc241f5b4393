//! One camera: its lifecycle task (connect, stream, reconnect with backoff, stop), its
//! decode thread, its frame cache and status.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use retina::client::SessionGroup;
use retina::codec::CodecItem;
use tokio::sync::{broadcast, oneshot, watch};

use crate::backoff::Backoff;
use crate::config::{CameraConfig, DecodePolicy, Source};
use crate::decode_worker::{self, Demand, EncodedFrame, Msg, WorkerHandle};
use crate::error::{Error, ErrorKind, Result};
use crate::events::CameraEvent;
use crate::frame::{Frame, SnapshotOptions};
use crate::frame_cache::FrameCache;
use crate::session::{self, fmt_duration, Step};
use crate::status::{epoch_ms, CameraState, StatusCell};

/// The shared parts of a camera, held by the manager, subscriptions and the tasks.
pub(crate) struct Camera {
    pub id: String,
    pub config: CameraConfig,
    pub status: Arc<StatusCell>,
    pub cache: Arc<FrameCache>,
    pub demand: Arc<Demand>,
    worker: std::sync::mpsc::SyncSender<Msg>,
    /// `true` once the camera is stopped; the lifecycle task and subscriptions watch it.
    stop: watch::Sender<bool>,
}

impl Camera {
    /// Creates the camera and its decode thread, and starts its lifecycle task.
    /// `first` receives the outcome of the first attempt.
    pub fn start(
        config: CameraConfig,
        source: Source,
        group: Arc<SessionGroup>,
        events: broadcast::Sender<CameraEvent>,
        rt: &tokio::runtime::Handle,
    ) -> Result<(Arc<Camera>, oneshot::Receiver<Result<()>>)> {
        let status = Arc::new(StatusCell::new(
            &config.id,
            source.url().as_str(),
            config.transport,
            config.decode,
            source.decoder(),
        ));
        let cache = Arc::new(FrameCache::new());
        let demand = Arc::new(Demand::new(config.decode, config.decode_grace));
        let worker = decode_worker::spawn(
            rt.clone(),
            &config.id,
            config.jpeg_quality,
            cache.clone(),
            status.clone(),
            demand.clone(),
        )?;
        let (stop, stop_rx) = watch::channel(false);
        let camera = Arc::new(Camera {
            id: config.id.clone(),
            config: config.clone(),
            status,
            cache,
            demand,
            worker: worker.sender(),
            stop,
        });
        let (first_tx, first_rx) = oneshot::channel();
        let task = Lifecycle {
            camera: camera.clone(),
            source,
            group,
            events,
            worker,
            first: Some(first_tx),
            backoff: Backoff::new(config.backoff_initial, config.backoff_max),
        };
        rt.spawn(task.run(stop_rx));
        Ok((camera, first_rx))
    }

    /// Stops the camera: ends its task (which tears the RTSP session down) and thread.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn stop_watch(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub fn set_decode(&self, p: DecodePolicy) {
        self.demand.set_policy(p);
        self.status.set_decode(p);
    }

    /// The latest picture as JPEG, decoding what the policy left undecoded.
    pub async fn snapshot(&self, opts: SnapshotOptions) -> Result<Frame> {
        let pic = self.latest_picture().await?;
        self.encode(pic, opts).await
    }

    /// The latest picture, decoded up to now (what a snapshot encodes), without encoding.
    pub async fn latest_picture(&self) -> Result<Arc<crate::frame_cache::CachedPicture>> {
        let state = self.status.state();
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
        match tokio::time::timeout(self.config.rtsp_timeout, rx).await {
            Ok(Ok(r)) => r.map_err(|e| e.for_camera(&self.id)),
            Ok(Err(_)) => Err(Error::closed().for_camera(&self.id)),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "decoding the buffered pictures took longer than {}",
                    fmt_duration(self.config.rtsp_timeout)
                ),
            )
            .for_camera(&self.id)),
        }
    }

    /// JPEG of a cached picture: from the cache when made already, else encoded on a
    /// blocking thread (once, however many ask at the same time).
    pub async fn encode(
        &self,
        pic: Arc<crate::frame_cache::CachedPicture>,
        opts: SnapshotOptions,
    ) -> Result<Frame> {
        let q = self.config.jpeg_quality;
        pic.mark_asked(&opts, q);
        if let Some(r) = pic.ready(&opts, q) {
            return r;
        }
        let cache = self.cache.clone();
        tokio::task::spawn_blocking(move || pic.jpeg(&opts, q, &cache.stats))
            .await
            .map_err(|_| Error::new(ErrorKind::Internal, "JPEG encoder task failed"))?
            .map_err(|e| e.for_camera(&self.id))
    }
}

/// The task that keeps one camera streaming.
struct Lifecycle {
    camera: Arc<Camera>,
    source: Source,
    group: Arc<SessionGroup>,
    events: broadcast::Sender<CameraEvent>,
    worker: WorkerHandle,
    first: Option<oneshot::Sender<Result<()>>>,
    backoff: Backoff,
}

impl Lifecycle {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let id = self.camera.id.clone();
        self.emit(CameraState::Connecting);
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
            let delay = self.backoff.next_delay(e.kind());
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
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.set_state(CameraState::Stopped);
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
        let cfg = &self.camera.config;
        let open = match session::open(&self.source, cfg, &self.group).await {
            Ok(o) => o,
            Err(e) => return e,
        };
        let mut demuxed = open.demuxed;
        let video = open.video_index;
        self.camera.status.set_info(open.info);
        self.worker.new_stream(open.codec);
        let endpoint = session::endpoint(self.source.url());
        let frame_timeout = cfg.frame_timeout;
        let mut got_first = false;
        loop {
            let item = match tokio::time::timeout(frame_timeout, demuxed.next()).await {
                Err(_) => {
                    return Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "no video from {endpoint} for {} although the session is open; reconnecting",
                            fmt_duration(frame_timeout)
                        ),
                    )
                    .at_step(Step::Stream)
                }
                Ok(None) => {
                    return Error::new(
                        ErrorKind::Unreachable,
                        format!("{endpoint} ended the stream"),
                    )
                    .at_step(Step::Stream)
                }
                Ok(Some(Err(e))) => {
                    return session::classify(&e, Step::Stream, &endpoint, true);
                }
                Ok(Some(Ok(item))) => item,
            };
            let CodecItem::VideoFrame(f) = item else {
                continue;
            };
            if f.stream_id() != video {
                continue;
            }
            if f.has_new_parameters() {
                let info = session::stream_info(&demuxed.streams()[video], open.codec);
                self.camera.status.update_params(info);
            }
            if f.loss() > 0 {
                tracing::debug!(camera = %self.camera.id, lost = f.loss(), "RTP packets lost");
            }
            let keyframe = f.is_random_access_point();
            let full_range = self.camera.status.full_range();
            let data = bytes::Bytes::from(f.into_data());
            self.camera.status.on_frame(data.len());
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
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if !got_first && keyframe {
                got_first = true;
                self.backoff.reset();
                self.set_state(CameraState::Streaming);
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
