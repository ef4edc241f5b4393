//! The built-in demo camera: a synthetic H.264 RTSP camera on loopback, for demos and tests.

use std::sync::Arc;

use camkit_demo_camera::{DemoCamera as CoreDemoCamera, DemoCameraOptions as CoreOptions};
use napi::bindgen_prelude::{PromiseRaw, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;
use parking_lot::Mutex;

use crate::error::convert;
use crate::{module_runtime, promise};

/// How to run a demo camera.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct DemoCameraOptions {
    /// TCP port on 127.0.0.1; 0 (the default here) picks a free one.
    pub port: Option<u32>,
    /// Picture width: even, 64–3840 (default 1280).
    pub width: Option<u32>,
    /// Picture height: even, 64–2160 (default 720).
    pub height: Option<u32>,
    /// Frames per second, 1–60 (default 15).
    pub fps: Option<u32>,
    /// The presentation path (default `/demo`); other paths get 404.
    pub path: Option<String>,
    /// Target H.264 bitrate (default 2 000 000).
    pub bitrate_bps: Option<u32>,
    /// With `password`: require RTSP Basic authentication with these credentials.
    pub username: Option<String>,
    /// See `username`.
    pub password: Option<String>,
}

impl DemoCameraOptions {
    fn into_core(self) -> camkit::Result<CoreOptions> {
        let d = CoreOptions::default();
        let port = match self.port {
            None => 0,
            Some(p) => u16::try_from(p)
                .map_err(|_| camkit::Error::invalid("port", "must be between 0 and 65535"))?,
        };
        let credentials = match (self.username, self.password) {
            (None, None) => None,
            (Some(u), Some(p)) => Some((u, p)),
            _ => {
                return Err(camkit::Error::invalid(
                    "username",
                    "give both username and password, or neither",
                ))
            }
        };
        Ok(CoreOptions {
            port,
            width: self.width.unwrap_or(d.width),
            height: self.height.unwrap_or(d.height),
            fps: self.fps.unwrap_or(d.fps),
            path: self.path.unwrap_or(d.path),
            bitrate_bps: self.bitrate_bps.unwrap_or(d.bitrate_bps),
            credentials,
            ..d
        })
    }
}

/// A running demo camera, from `startDemoCamera()`. Runs until `stop()`, or until this
/// object is garbage-collected: keep a reference while cameras use it.
#[napi]
pub struct DemoCamera {
    url: String,
    port: u32,
    inner: Arc<Mutex<Option<CoreDemoCamera>>>,
}

#[napi]
impl DemoCamera {
    /// `rtsp://127.0.0.1:PORT/demo` (never with credentials).
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The TCP port it listens on.
    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.port
    }

    /// The number of clients currently playing its stream.
    #[napi(getter)]
    pub fn sessions(&self) -> u32 {
        self.inner
            .lock()
            .as_ref()
            .map_or(0, |c| u32::try_from(c.sessions()).unwrap_or(u32::MAX))
    }

    /// Fault injection (for tests): closes every client connection now, mid-stream or not,
    /// as a camera that reboots or drops its clients does. It keeps listening, so cameras
    /// connected to it reconnect.
    #[napi]
    pub fn drop_connections(&self) {
        if let Some(cam) = self.inner.lock().as_ref() {
            cam.drop_connections();
        }
    }

    /// Stops serving: closes the listener and every client connection. Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn stop<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let inner = Arc::clone(&self.inner);
        promise::spawn(
            env,
            &module_runtime(),
            async move {
                let cam = inner.lock().take();
                if let Some(cam) = cam {
                    cam.stop().await;
                }
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }
}

/// Starts the built-in demo camera: a synthetic H.264 RTSP camera on 127.0.0.1 (a colour
/// band, a clock and a moving box), served from this process. Connect to its `url`.
#[napi(
    ts_args_type = "options?: DemoCameraOptions | undefined | null",
    ts_return_type = "Promise<DemoCamera>"
)]
pub fn start_demo_camera<'env>(
    env: &'env Env,
    options: Option<Unknown<'env>>,
) -> napi::Result<PromiseRaw<'env, DemoCamera>> {
    let rt = module_runtime();
    let options = match options {
        Some(o) if !matches!(o.get_type(), Ok(ValueType::Undefined | ValueType::Null)) => {
            convert::<DemoCameraOptions>(o, "options")
        }
        _ => Ok(DemoCameraOptions::default()),
    }
    .and_then(DemoCameraOptions::into_core);
    let options = match options {
        Ok(o) => o,
        Err(e) => return promise::rejected(env, &rt, e),
    };
    promise::spawn(
        env,
        &rt,
        async move { CoreDemoCamera::start(options).await },
        |_, cam| {
            Ok(DemoCamera {
                url: cam.url(),
                port: cam.port().into(),
                inner: Arc::new(Mutex::new(Some(cam))),
            })
        },
    )
}
