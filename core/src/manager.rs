//! The camera manager: the set of cameras of one application.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use retina::client::SessionGroup;
use tokio::sync::broadcast;

use crate::camera::Camera;
use crate::config::{check_id, CameraConfig, DecodePolicy};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{CameraEvent, EventStream};
use crate::frame::{Frame, SnapshotOptions, SubscribeOptions};
use crate::pictures::{CameraPictures, LatestPicture};
use crate::status::CameraStatus;
use crate::subscription::Subscription;
use crate::util::fmt_duration;
use crate::video::{VideoOptions, VideoSubscription};

/// Options for a [`CameraManager`].
#[derive(Clone, Debug)]
pub struct ManagerOptions {
    /// Worker threads of the runtime the manager creates when it is not created inside
    /// one (the bindings' case). Decoding runs on its own threads, not these.
    pub worker_threads: usize,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        ManagerOptions { worker_threads: 2 }
    }
}

/// The cameras of one application: connect, disconnect, status, snapshots, subscriptions.
///
/// Cheap to clone (an `Arc`), `Send + Sync`. Cameras run on a tokio runtime: the one the
/// manager was created in, or one it creates for itself. When the last clone is dropped
/// (or [`close`](Self::close) is called) every camera stops and its RTSP session is torn
/// down.
#[derive(Clone)]
pub struct CameraManager {
    inner: Arc<Inner>,
}

struct Inner {
    cameras: RwLock<HashMap<String, Arc<Camera>>>,
    events: broadcast::Sender<CameraEvent>,
    group: Arc<SessionGroup>,
    handle: tokio::runtime::Handle,
    own_runtime: Mutex<Option<tokio::runtime::Runtime>>,
    /// `true` once closed; event streams watch it.
    closed: tokio::sync::watch::Sender<bool>,
}

impl Default for CameraManager {
    fn default() -> Self {
        Self::new()
    }
}

impl CameraManager {
    /// A manager on the current tokio runtime, or on a runtime of its own when called
    /// outside one.
    pub fn new() -> Self {
        Self::with_options(ManagerOptions::default())
    }

    /// A manager with options. Creating a runtime can fail only when the OS refuses
    /// threads; that is reported by the first call (`Internal`).
    pub fn with_options(opts: ManagerOptions) -> Self {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => Self::on_runtime(handle, None),
            Err(_) => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(opts.worker_threads.clamp(1, 64))
                    .thread_name("camkit-rt")
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => {
                        let handle = rt.handle().clone();
                        Self::on_runtime(handle, Some(rt))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot create camkit runtime");
                        // A current-thread runtime needs no threads; calls still work
                        // through block_on in the bindings.
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .expect("a current-thread runtime needs no OS resources");
                        let handle = rt.handle().clone();
                        Self::on_runtime(handle, Some(rt))
                    }
                }
            }
        }
    }

    /// A manager whose cameras run on the given runtime.
    pub fn with_runtime(handle: tokio::runtime::Handle) -> Self {
        Self::on_runtime(handle, None)
    }

    fn on_runtime(handle: tokio::runtime::Handle, own: Option<tokio::runtime::Runtime>) -> Self {
        let (events, _) = broadcast::channel(256);
        CameraManager {
            inner: Arc::new(Inner {
                cameras: RwLock::new(HashMap::new()),
                events,
                group: Arc::new(SessionGroup::default()),
                handle,
                own_runtime: Mutex::new(own),
                closed: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    /// The runtime the cameras run on (bindings use it to drive async calls).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.handle
    }

    fn check_open(&self) -> Result<()> {
        if *self.inner.closed.borrow() {
            Err(Error::closed())
        } else {
            Ok(())
        }
    }

    /// The camera with this id.
    fn camera(&self, id: &str) -> Result<Arc<Camera>> {
        self.check_open()?;
        check_id(id)?;
        self.inner
            .cameras
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(id))
    }

    /// Connects a camera and waits for its first picture (and, for a camera with a
    /// sub-stream, for the sub-stream's first attempt, which never fails the connect).
    ///
    /// On failure the camera is forgotten and the error says why (refused credentials,
    /// unreachable, timeout, unsupported codec …), unless `config.persistent` is set: then
    /// the camera stays, retrying with backoff, and its status is returned (state
    /// `reconnecting`, `last_error` saying why). The whole wait is bounded by
    /// [`CameraConfig::connect_bound`] (`Timeout`; a persistent camera's status, still
    /// `connecting`). Connecting several cameras at once runs concurrently.
    pub async fn connect(&self, config: CameraConfig) -> Result<CameraStatus> {
        self.check_open()?;
        let source = config.validate()?;
        let id = config.id.clone();
        let persistent = config.persistent;
        let bound = config.connect_bound();
        let started_at = tokio::time::Instant::now();
        let (first, sub_first) = {
            let mut cams = self.inner.cameras.write();
            // Again under the lock: `close()` sets the flag, then drains the map under this
            // lock, so a camera inserted here after a `close()` would never be stopped.
            self.check_open()?;
            if cams.contains_key(&id) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "camera {id:?} is already connected; disconnect it first or use another id"
                    ),
                ));
            }
            let started = Camera::start(
                config,
                source,
                self.inner.group.clone(),
                self.inner.events.clone(),
                &self.inner.handle,
            )?;
            cams.insert(id.clone(), started.camera);
            (started.first, started.sub_first)
        };
        let outcome = match tokio::time::timeout(bound, first).await {
            Ok(first) => first.unwrap_or_else(|_| Err(Error::closed())),
            // A persistent camera stays, and keeps trying, as after a failed attempt.
            Err(_) if persistent => return self.status(&id),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "no picture from camera {id:?} within {} of connecting; check the camera, \
                     or raise connectTimeoutMs",
                    fmt_duration(bound)
                ),
            )
            .for_camera(&id)),
        };
        match outcome {
            Ok(()) => {
                // The sub-stream started with the main one: its first attempt (streaming,
                // or refused and off) is known by now or soon, within what is left of the
                // bound. Its failure is in its status, never the camera's.
                if let Some(sub_first) = sub_first {
                    let left = bound.saturating_sub(started_at.elapsed());
                    let _ = tokio::time::timeout(left, sub_first).await;
                }
                self.status(&id)
            }
            Err(e) if !persistent => {
                self.remove(&id);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn remove(&self, id: &str) -> Option<Arc<Camera>> {
        let cam = self.inner.cameras.write().remove(id);
        if let Some(c) = &cam {
            c.stop();
        }
        cam
    }

    /// Disconnects a camera: its session is torn down, subscriptions end, its id is free.
    pub async fn disconnect(&self, id: &str) -> Result<()> {
        self.check_open()?;
        check_id(id)?;
        let cam = self.remove(id).ok_or_else(|| Error::not_found(id))?;
        // Wait (briefly) until the camera task has ended, so a reconnect with the same id
        // does not meet the old session at the camera.
        let mut stop = cam.stop_watch();
        let _ = stop.wait_for(|s| *s).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while cam.state() != crate::CameraState::Stopped && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Disconnects every camera.
    pub async fn disconnect_all(&self) -> Result<()> {
        self.check_open()?;
        let ids: Vec<String> = self.inner.cameras.read().keys().cloned().collect();
        let futs = ids.iter().map(|id| self.disconnect(id));
        for r in futures::future::join_all(futs).await {
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The status of one camera.
    pub fn status(&self, id: &str) -> Result<CameraStatus> {
        Ok(self.camera(id)?.status())
    }

    /// The status of every camera, sorted by id.
    pub fn list(&self) -> Vec<CameraStatus> {
        let ids: Vec<String> = {
            let mut v: Vec<String> = self.inner.cameras.read().keys().cloned().collect();
            v.sort();
            v
        };
        ids.iter().filter_map(|id| self.status(id).ok()).collect()
    }

    /// The latest picture of a camera as JPEG.
    ///
    /// Served from the frame cache when that picture was encoded at this size already;
    /// with the `onDemand` policy and nobody watching, it first decodes the frames
    /// buffered since the last keyframe. Bounded by the camera's
    /// [`CameraConfig::snapshot_bound`] (`Timeout`).
    pub async fn snapshot(&self, id: &str, opts: SnapshotOptions) -> Result<Frame> {
        opts.validate()?;
        let cam = self.camera(id)?;
        cam.snapshot(opts).await
    }

    /// Read-only access to one camera's pictures (see [`CameraPictures`]).
    pub fn pictures(&self, id: &str) -> Result<CameraPictures> {
        Ok(CameraPictures::new(self.camera(id)?))
    }

    /// A camera's latest picture, decoding what the decode policy left undecoded (as
    /// [`snapshot`](Self::snapshot) does), without encoding it: its sequence number,
    /// capture time, size, luma summary, and JPEG on request.
    pub async fn latest_picture(&self, id: &str) -> Result<LatestPicture> {
        self.pictures(id)?.latest().await
    }

    /// Subscribes to a camera's frames at no more than `opts.fps`, latest wins.
    pub fn subscribe(&self, id: &str, opts: SubscribeOptions) -> Result<Subscription> {
        opts.validate()?;
        let cam = self.camera(id)?;
        Ok(Subscription::new(cam, opts))
    }

    /// Live video of a camera as it sent it, without decoding: fragmented MP4 or Annex B
    /// access units (see [`crate::video`]). Starts with the frames since the last keyframe.
    /// `opts.stream` `Sub` takes a camera's sub-stream when it streams at that moment,
    /// else its main stream (the subscription stays on the stream it started on).
    pub fn subscribe_video(&self, id: &str, opts: VideoOptions) -> Result<VideoSubscription> {
        opts.validate()?;
        let main = self.camera(id)?;
        let cam = main.pick(None, opts.stream);
        VideoSubscription::new(main.id(), cam.video(), opts)
    }

    /// Changes a camera's decode policy at run time.
    pub fn set_decode_policy(&self, id: &str, policy: DecodePolicy) -> Result<()> {
        self.camera(id)?.set_decode(policy);
        Ok(())
    }

    /// State changes of every camera of this manager, from now on.
    pub fn events(&self) -> EventStream {
        EventStream {
            rx: self.inner.events.subscribe(),
            closed: self.inner.closed.subscribe(),
        }
    }

    /// Stops every camera and refuses further calls (`Closed`). Idempotent.
    pub fn close(&self) {
        if self.inner.closed.send_replace(true) {
            return;
        }
        let cams: Vec<Arc<Camera>> = self.inner.cameras.write().drain().map(|(_, c)| c).collect();
        for c in cams {
            c.stop();
        }
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for (_, c) in self.cameras.get_mut().drain() {
            c.stop();
        }
        if let Some(rt) = self.own_runtime.get_mut().take() {
            // Give the camera tasks a moment to send TEARDOWN, without blocking an async
            // context (dropping a runtime there would panic).
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_millis(200));
            }
        }
    }
}

impl std::fmt::Debug for CameraManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraManager")
            .field("cameras", &self.inner.cameras.read().len())
            .finish()
    }
}
