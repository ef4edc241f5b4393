//! The encoder thread: renders and H.264-encodes the demo picture at the configured frame
//! rate while at least one client is playing, and broadcasts each access unit.
//!
//! One `std::thread` per camera (never a tokio worker: an encode takes milliseconds of CPU).
//! With nobody playing it sleeps on a condition variable and uses no CPU. Each encoded access
//! unit goes to a [`tokio::sync::broadcast`] channel; the encoder never waits for a receiver,
//! so a slow client only lags (and then skips to the next keyframe, see `rtsp.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, RateControlMode, SpsPpsStrategy,
    UsageType, VuiConfig,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};
use parking_lot::{Condvar, Mutex};
use tokio::sync::{broadcast, oneshot};

use super::picture::PictureGenerator;
use camkit::{Error, ErrorKind, Result};

/// H.264 NAL unit types used here (ITU-T H.264 table 7-1).
pub(crate) const NAL_IDR: u8 = 5;
pub(crate) const NAL_SPS: u8 = 7;
pub(crate) const NAL_PPS: u8 = 8;

/// One encoded picture.
#[derive(Debug)]
pub(crate) struct EncodedFrame {
    /// The NAL units, in decoding order, without start codes. Keyframes start with SPS and PPS.
    pub nals: Vec<Bytes>,
    /// Capture time on the camera's 90 kHz clock (see [`EncoderHandle::rtp_now`]).
    pub rtp_time: u32,
    /// Whether this is an IDR picture a decoder can start from.
    pub keyframe: bool,
}

/// The H.264 parameter sets, for the SDP.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParameterSets {
    pub sps: Bytes,
    pub pps: Bytes,
}

/// What the encoder thread needs to know.
#[derive(Clone, Debug)]
pub(crate) struct EncoderSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_bps: u32,
    pub gop_frames: u32,
    /// How many access units a client may fall behind (beyond what its socket buffers hold)
    /// before it skips to the next keyframe.
    pub queue_frames: usize,
}

#[derive(Default)]
struct CtlState {
    /// Clients currently playing.
    playing: usize,
    /// The next picture must be an IDR.
    force_idr: bool,
    /// The thread must exit.
    stop: bool,
    /// Fault injection: restart the encoder at this size (new SPS/PPS, in-band at the next
    /// IDR and in the SDP of later `DESCRIBE`s).
    resize: Option<(u32, u32)>,
}

/// State shared between the encoder thread, the RTSP sessions and the [`super::DemoCamera`].
pub(crate) struct EncoderShared {
    state: Mutex<CtlState>,
    wake: Condvar,
    frames_encoded: AtomicU64,
    tx: broadcast::Sender<Arc<EncodedFrame>>,
    epoch: Instant,
    /// Fault injection: encode but send nothing (a camera whose video stalls while its
    /// RTSP side still answers).
    video_paused: std::sync::atomic::AtomicBool,
    /// The parameter sets in force (for the SDP); replaced when the encoder restarts at
    /// another size.
    params: Mutex<Option<ParameterSets>>,
}

impl EncoderShared {
    /// Now on the camera's 90 kHz RTP clock (wraps every ~13 h).
    pub(crate) fn rtp_now(&self) -> u32 {
        rtp_time(self.epoch, Instant::now())
    }

    /// Registers a playing client: it receives every access unit from now on, and the
    /// encoder runs (and emits an IDR promptly) while the returned guard lives.
    pub(crate) fn start_viewer(
        self: &Arc<Self>,
    ) -> (broadcast::Receiver<Arc<EncodedFrame>>, ViewerGuard) {
        // Subscribe before requesting the IDR so the receiver cannot miss it.
        let rx = self.tx.subscribe();
        {
            let mut s = self.state.lock();
            s.playing += 1;
            s.force_idr = true;
        }
        self.wake.notify_all();
        (
            rx,
            ViewerGuard {
                shared: Arc::clone(self),
            },
        )
    }

    /// Asks for an IDR picture soon (for a client that fell behind).
    pub(crate) fn request_keyframe(&self) {
        self.state.lock().force_idr = true;
        self.wake.notify_all();
    }

    /// Clients currently playing.
    pub(crate) fn playing(&self) -> usize {
        self.state.lock().playing
    }

    /// Pictures encoded since the camera started (including the one encoded at startup).
    pub(crate) fn frames_encoded(&self) -> u64 {
        self.frames_encoded.load(Ordering::Relaxed)
    }

    /// Stops (or resumes) sending video; resuming starts at a fresh keyframe.
    pub(crate) fn set_video_paused(&self, paused: bool) {
        let was = self.video_paused.swap(paused, Ordering::Relaxed);
        if was && !paused {
            self.state.lock().force_idr = true;
            self.wake.notify_all();
        }
    }

    /// Restarts the encoder at another picture size: the next access unit is an IDR with
    /// new SPS/PPS. The size must already be validated.
    pub(crate) fn resize(&self, width: u32, height: u32) {
        self.state.lock().resize = Some((width, height));
        self.wake.notify_all();
    }

    /// The SPS/PPS in force, once the encoder has produced them.
    pub(crate) fn params(&self) -> Option<ParameterSets> {
        self.params.lock().clone()
    }

    /// Shared state with no encoder thread behind it (the request fuzzer's camera): PLAY
    /// works, but no picture ever comes.
    pub(crate) fn detached(params: ParameterSets) -> Arc<Self> {
        let (tx, _) = broadcast::channel(1);
        Arc::new(EncoderShared {
            state: Mutex::new(CtlState::default()),
            wake: Condvar::new(),
            frames_encoded: AtomicU64::new(0),
            tx,
            epoch: Instant::now(),
            video_paused: std::sync::atomic::AtomicBool::new(false),
            params: Mutex::new(Some(params)),
        })
    }

    /// Tells the thread to exit (it finishes the picture in progress, if any).
    pub(crate) fn stop(&self) {
        self.state.lock().stop = true;
        self.wake.notify_all();
    }
}

/// Keeps the encoder running for one playing client; dropping it ends that.
pub(crate) struct ViewerGuard {
    shared: Arc<EncoderShared>,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        let mut s = self.shared.state.lock();
        s.playing = s.playing.saturating_sub(1);
    }
}

fn rtp_time(epoch: Instant, at: Instant) -> u32 {
    let d = at.saturating_duration_since(epoch);
    // Truncation is the RTP clock's wrap-around.
    (d.as_nanos() * 90_000 / 1_000_000_000) as u64 as u32
}

/// The running encoder thread.
pub(crate) struct EncoderHandle {
    pub shared: Arc<EncoderShared>,
    pub thread: std::thread::JoinHandle<()>,
}

/// Starts the encoder thread, which encodes one picture to learn the SPS/PPS and then waits
/// for a client.
pub(crate) async fn spawn(settings: EncoderSettings) -> Result<EncoderHandle> {
    let (tx, _) = broadcast::channel(settings.queue_frames.max(1));
    let shared = Arc::new(EncoderShared {
        state: Mutex::new(CtlState::default()),
        wake: Condvar::new(),
        frames_encoded: AtomicU64::new(0),
        tx,
        epoch: Instant::now(),
        video_paused: std::sync::atomic::AtomicBool::new(false),
        params: Mutex::new(None),
    });
    let (ready_tx, ready_rx) = oneshot::channel();
    let thread_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("camkit-demo-enc".into())
        .spawn(move || run(settings, thread_shared, ready_tx))
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("demo camera: could not start the encoder thread: {e}"),
            )
        })?;
    match ready_rx.await {
        Ok(Ok(params)) => {
            *shared.params.lock() = Some(params);
            Ok(EncoderHandle { shared, thread })
        }
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(Error::new(
            ErrorKind::Internal,
            "demo camera: the encoder thread exited during startup",
        )),
    }
}

fn encode_error(e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("demo camera: H.264 encoder failed: {e}"),
    )
}

/// The encoder plus the picture it encodes.
struct Pipeline {
    encoder: Encoder,
    picture: PictureGenerator,
    settings: EncoderSettings,
    params: Option<ParameterSets>,
    frame_no: u64,
}

impl Pipeline {
    fn new(settings: EncoderSettings) -> Result<Self> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(settings.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            // Skipping stays enabled: openh264 warns on stdout without it. A skipped picture
            // (no output) is simply not sent.
            .skip_frames(true)
            .intra_frame_period(IntraFramePeriod::from_num_frames(settings.gop_frames))
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .usage_type(UsageType::CameraVideoRealTime)
            .num_threads(1)
            .vui(VuiConfig::bt601().full_range(true));
        let encoder =
            Encoder::with_api_config(OpenH264API::from_source(), config).map_err(encode_error)?;
        Ok(Pipeline {
            encoder,
            picture: PictureGenerator::new(settings.width, settings.height, settings.fps),
            settings,
            params: None,
            frame_no: 0,
        })
    }

    /// Renders and encodes the next picture.
    fn encode(&mut self, epoch: Instant, force_idr: bool) -> Result<EncodedFrame> {
        let captured = Instant::now();
        self.picture.render(self.frame_no, SystemTime::now());
        self.frame_no += 1;
        if force_idr {
            self.encoder.force_intra_frame();
        }
        let (w, h) = (self.settings.width as usize, self.settings.height as usize);
        let yuv = YUVSlices::new(self.picture.planes(), (w, h), (w, w / 2, w / 2));
        let ms = captured.saturating_duration_since(epoch).as_millis() as u64;
        let bitstream = self
            .encoder
            .encode_at(&yuv, Timestamp::from_millis(ms))
            .map_err(encode_error)?;
        let mut nals = Vec::new();
        for l in 0..bitstream.num_layers() {
            let Some(layer) = bitstream.layer(l) else {
                continue;
            };
            for n in 0..layer.nal_count() {
                if let Some(nal) = layer.nal_unit(n) {
                    let nal = strip_start_code(nal);
                    if !nal.is_empty() {
                        nals.push(Bytes::copy_from_slice(nal));
                    }
                }
            }
        }
        let nal_type = |n: &Bytes| n[0] & 0x1F;
        let keyframe = nals.iter().any(|n| nal_type(n) == NAL_IDR);
        let sps = nals.iter().find(|n| nal_type(n) == NAL_SPS).cloned();
        let pps = nals.iter().find(|n| nal_type(n) == NAL_PPS).cloned();
        if let (Some(sps), Some(pps)) = (sps, pps) {
            self.params = Some(ParameterSets { sps, pps });
        } else if keyframe {
            // Every keyframe must be decodable on its own: prepend the parameter sets if the
            // encoder left them out.
            if let Some(p) = &self.params {
                nals.retain(|n| !matches!(nal_type(n), NAL_SPS | NAL_PPS));
                nals.insert(0, p.pps.clone());
                nals.insert(0, p.sps.clone());
            }
        }
        Ok(EncodedFrame {
            nals,
            rtp_time: rtp_time(epoch, captured),
            keyframe,
        })
    }
}

/// Strips an Annex B start code (`00 00 01` or `00 00 00 01`) from the front of `nal`.
pub(crate) fn strip_start_code(nal: &[u8]) -> &[u8] {
    let zeros = nal.iter().take_while(|&&b| b == 0).count();
    if zeros >= 2 && nal.get(zeros) == Some(&1) {
        &nal[zeros + 1..]
    } else {
        nal
    }
}

fn run(
    settings: EncoderSettings,
    shared: Arc<EncoderShared>,
    ready: oneshot::Sender<Result<ParameterSets>>,
) {
    let period = Duration::from_secs_f64(1.0 / f64::from(settings.fps.max(1)));
    let (w, h, fps) = (settings.width, settings.height, settings.fps);
    let started = Instant::now();
    let mut pipeline = match Pipeline::new(settings) {
        Ok(p) => p,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    // Encode one picture to learn the SPS/PPS for the SDP.
    match pipeline.encode(shared.epoch, true) {
        Ok(_) => {}
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    }
    shared.frames_encoded.fetch_add(1, Ordering::Relaxed);
    let Some(params) = pipeline.params.clone() else {
        let _ = ready.send(Err(Error::new(
            ErrorKind::Internal,
            "demo camera: the H.264 encoder produced no SPS/PPS",
        )));
        return;
    };
    tracing::debug!(
        width = w,
        height = h,
        fps,
        startup_ms = started.elapsed().as_millis() as u64,
        "demo camera encoder ready"
    );
    if ready.send(Ok(params)).is_err() {
        return; // start() was cancelled.
    }

    let mut next_tick: Option<Instant> = None;
    loop {
        let force_idr = {
            let mut s = shared.state.lock();
            // Idle: sleep until a client plays (zero CPU).
            while !s.stop && s.playing == 0 && s.resize.is_none() {
                next_tick = None;
                shared.wake.wait(&mut s);
            }
            if let Some((width, height)) = s.resize.take().filter(|_| !s.stop) {
                let playing = s.playing > 0;
                drop(s);
                restart(&mut pipeline, &shared, width, height, playing);
                continue;
            }
            // Pace to the frame rate.
            if let Some(t) = next_tick {
                while !s.stop && s.playing > 0 && Instant::now() < t {
                    shared.wake.wait_until(&mut s, t);
                }
            }
            if s.stop {
                break;
            }
            if s.playing == 0 {
                continue;
            }
            std::mem::take(&mut s.force_idr)
        };
        let now = Instant::now();
        next_tick = Some(match next_tick {
            // Keep a steady cadence, but never try to catch up after a stall.
            Some(t) if now < t + period => t + period,
            _ => now + period,
        });
        match pipeline.encode(shared.epoch, force_idr) {
            Ok(frame) if frame.nals.is_empty() => {
                // Rate control skipped this picture; make sure a requested IDR still comes.
                shared.frames_encoded.fetch_add(1, Ordering::Relaxed);
                if force_idr {
                    shared.state.lock().force_idr = true;
                }
            }
            Ok(frame) => {
                shared.frames_encoded.fetch_add(1, Ordering::Relaxed);
                if !shared.video_paused.load(Ordering::Relaxed) {
                    // An error only means nobody is subscribed right now.
                    let _ = shared.tx.send(Arc::new(frame));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "demo camera: encoding a picture failed");
                shared.state.lock().force_idr = true;
            }
        }
    }
    tracing::debug!("demo camera encoder stopped");
}

/// Replaces the pipeline by one at `width`x`height` and encodes its first picture (an IDR
/// with the new SPS/PPS), which goes to the viewers when there are any. On failure the old
/// pipeline stays.
fn restart(pipeline: &mut Pipeline, shared: &EncoderShared, width: u32, height: u32, send: bool) {
    let settings = EncoderSettings {
        width,
        height,
        ..pipeline.settings.clone()
    };
    let mut next = match Pipeline::new(settings) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, width, height, "demo camera: cannot restart the encoder");
            return;
        }
    };
    next.frame_no = pipeline.frame_no;
    match next.encode(shared.epoch, true) {
        Ok(frame) => {
            shared.frames_encoded.fetch_add(1, Ordering::Relaxed);
            if let Some(p) = next.params.clone() {
                *shared.params.lock() = Some(p);
            }
            *pipeline = next;
            tracing::info!(
                width,
                height,
                "demo camera: encoder restarted at a new size"
            );
            if send && !frame.nals.is_empty() && !shared.video_paused.load(Ordering::Relaxed) {
                let _ = shared.tx.send(Arc::new(frame));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, width, height, "demo camera: cannot restart the encoder");
        }
    }
}

/// See [`super::sample_access_units`].
pub(crate) fn sample_access_units(width: u32, height: u32, count: usize) -> Result<Vec<Vec<u8>>> {
    let mut p = Pipeline::new(EncoderSettings {
        width,
        height,
        fps: 15,
        bitrate_bps: 300_000,
        gop_frames: 1000,
        queue_frames: 1,
    })?;
    let epoch = Instant::now();
    let mut out = Vec::with_capacity(count);
    // Rate control may skip a picture now and then; give up rather than loop forever.
    for i in 0..count * 4 + 8 {
        if out.len() == count {
            break;
        }
        let f = p.encode(epoch, i == 0)?;
        if f.nals.is_empty() {
            continue;
        }
        let mut au = Vec::new();
        for n in &f.nals {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(n);
        }
        out.push(au);
    }
    Ok(out)
}

/// Encodes `n` pictures back to back, then `n` forced IDRs; returns (ms per P picture, ms
/// per IDR picture, both including rendering; mean bytes per P picture; per IDR picture).
/// For the timing report in the tests.
#[cfg(test)]
pub(crate) fn time_encode(settings: EncoderSettings, n: usize) -> (f64, f64, usize, usize) {
    let mut p = Pipeline::new(settings).expect("encoder");
    let epoch = Instant::now();
    let _ = p.encode(epoch, true).expect("encode");
    let mut run = |force: bool| {
        let start = Instant::now();
        let mut bytes = 0;
        for _ in 0..n {
            let f = p.encode(epoch, force).expect("encode");
            bytes += f.nals.iter().map(|n| n.len()).sum::<usize>();
        }
        (
            start.elapsed().as_secs_f64() * 1000.0 / n as f64,
            bytes / n.max(1),
        )
    };
    let (p_ms, p_bytes) = run(false);
    let (i_ms, i_bytes) = run(true);
    (p_ms, i_ms, p_bytes, i_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_start_codes() {
        assert_eq!(strip_start_code(&[0, 0, 0, 1, 0x67, 1]), &[0x67, 1]);
        assert_eq!(strip_start_code(&[0, 0, 1, 0x68]), &[0x68]);
        assert_eq!(strip_start_code(&[0x65, 0, 0, 1]), &[0x65, 0, 0, 1]);
        assert_eq!(strip_start_code(&[]), &[] as &[u8]);
    }

    #[test]
    fn keyframes_carry_parameter_sets() {
        let settings = EncoderSettings {
            width: 320,
            height: 240,
            fps: 15,
            bitrate_bps: 500_000,
            gop_frames: 5,
            queue_frames: 4,
        };
        let mut p = Pipeline::new(settings).unwrap();
        let epoch = Instant::now();
        let first = p.encode(epoch, false).unwrap();
        assert!(first.keyframe);
        let params = p.params.clone().unwrap();
        let mut keyframes = 0;
        for i in 1..=12 {
            let f = p.encode(epoch, i == 8).unwrap();
            let types: Vec<u8> = f.nals.iter().map(|n| n[0] & 0x1F).collect();
            assert_eq!(f.keyframe, i == 5 || i == 8, "frame {i}: {types:?}");
            if f.keyframe {
                keyframes += 1;
                assert_eq!(&types[..2], &[NAL_SPS, NAL_PPS], "frame {i}: {types:?}");
                // Constant ids: the in-band parameter sets are the ones in the SDP.
                assert_eq!(f.nals[0], params.sps);
                assert_eq!(f.nals[1], params.pps);
            } else {
                assert!(types.iter().all(|&t| t == 1), "frame {i}: {types:?}");
            }
        }
        // gop 5 → IDR at 5; the forced one at 8 restarts the period.
        assert_eq!(keyframes, 2);
    }
}
