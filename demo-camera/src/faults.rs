//! Fault injection: a [`DemoCamera`](super::DemoCamera) told to misbehave on cue, the way
//! real cameras do, so clients (camkit's own fault matrix first) can be tested against it.
//!
//! **For testing.** Nothing here is meant for a camera anyone watches. A [`Faults`] value
//! describes what is wrong *from now on*; [`DemoCamera::set_faults`](super::DemoCamera::set_faults)
//! installs it (every connection, existing and new, follows it at its next request or
//! frame), and [`DemoCamera::clear_faults`](super::DemoCamera::clear_faults) ends the
//! misbehaviour. One-off events are methods of the camera:
//! [`drop_connections`](super::DemoCamera::drop_connections) (hang up on every client now),
//! [`set_resolution`](super::DemoCamera::set_resolution) (encoder restarted at another size)
//! and [`set_video_paused`](super::DemoCamera::set_video_paused) (video stops, RTSP goes on).
//!
//! ```no_run
//! # async fn demo(cam: &camkit_demo_camera::DemoCamera) {
//! use camkit_demo_camera::faults::{Faults, Reply};
//! cam.set_faults(Faults::answer("DESCRIBE", Reply::Status(503)));
//! cam.drop_connections(); // clients reconnect, and meet the 503
//! cam.clear_faults();
//! # }
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

/// How a camera answers the requests a fault targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Answer with this status code and no body (`401` also carries a `WWW-Authenticate`
    /// header, as a camera asking for credentials does). The connection stays open.
    Status(u16),
    /// Answer with bytes that are not RTSP at all, then close the connection.
    Garbage,
    /// Send the first half of the real answer (head cut mid-line), then close.
    Truncated,
    /// Never answer; the connection stays open and later requests on it are ignored too.
    Silence,
    /// Close the connection without answering.
    Close,
}

/// The codec the SDP announces for the video track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AnnouncedCodec {
    /// H.264, the truth.
    #[default]
    H264,
    /// H.265 (`a=rtpmap:96 H265/90000`), while the payload stays H.264: a client that does
    /// not decode H.265 must refuse at `DESCRIBE`, before any payload matters.
    H265,
    /// MPEG-4 Part 2 (`a=rtpmap:96 MP4V-ES/90000`, what older cameras send), while the
    /// payload stays H.264: a codec no client of this camera decodes, refused at `DESCRIBE`.
    Mpeg4,
}

/// An audio track next to the video.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Audio {
    /// Video only, the truth.
    #[default]
    None,
    /// The SDP also describes a PCMU (G.711 µ-law, 8 kHz) track, `trackID=1`, which can be
    /// set up; no audio is sent.
    Announce,
    /// As `Announce`, and silence is sent as PCMU packets with each video frame: on the
    /// audio track's channel when it was set up, otherwise on the two channels after the
    /// video's (unasked-for data on an unassigned channel, as some broken cameras send).
    AnnounceAndSend,
}

/// What a [`DemoCamera`](super::DemoCamera) does wrong, from when it is installed until it
/// is replaced or cleared. The default is a camera that does nothing wrong.
///
/// For testing: see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Requests with this method (`"DESCRIBE"`, `"SETUP"`, `"PLAY"`, `"GET_PARAMETER"` …;
    /// `"*"` for every method) get this reply instead of being served.
    pub reply: Option<(String, Reply)>,
    /// Close each playing connection once it has been sent this many access units since
    /// `PLAY` (a camera that drops its clients mid-stream). `Some(0)` closes at the first
    /// frame.
    pub hang_up_after_frames: Option<u32>,
    /// Skip one RTP packet in every `n` (never sent, its sequence number used: the client
    /// sees packet loss). `Some(1)` sends no video packet at all.
    pub drop_one_packet_in: Option<u32>,
    /// Damage the slice data of one access unit in every `n`: bytes in the middle of each
    /// slice NAL unit are changed (bit errors a decoder must survive) while the Annex B
    /// byte stream stays well-formed, so the RTP depacketizer still accepts it.
    pub corrupt_one_frame_in: Option<u32>,
    /// The codec the SDP announces.
    pub announce_codec: AnnouncedCodec,
    /// An audio track next to the video.
    pub audio: Audio,
    /// Start each client's stream in the middle of a frame, as a busy camera joined at an
    /// arbitrary packet does: the packets of the first access unit after `PLAY` up to and
    /// including its first FU-A start fragment are never sent (their sequence numbers
    /// unused), so the first RTP packet a client gets continues a fragmented NAL unit.
    pub start_mid_frame: bool,
    /// Accept at most this many RTSP sessions at once; a `SETUP` for another one gets
    /// `453 Not Enough Bandwidth` (what single-client cameras answer).
    pub max_sessions: Option<usize>,
}

impl Faults {
    /// No fault: the camera behaves.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Answer requests of `method` (`"*"`: any method) with `reply`.
    pub fn answer(method: &str, reply: Reply) -> Self {
        Faults {
            reply: Some((method.to_owned(), reply)),
            ..Faults::default()
        }
    }

    /// The reply for a request of `method`, if a fault targets it.
    pub(crate) fn reply_for(&self, method: &str) -> Option<Reply> {
        match &self.reply {
            Some((m, r)) if m == "*" || m.eq_ignore_ascii_case(method) => Some(*r),
            _ => None,
        }
    }
}

/// The faults in force and the state they need, shared by every connection of a camera.
pub(crate) struct FaultState {
    current: Mutex<Faults>,
    /// Bumped to hang up on every connection.
    hangup: watch::Sender<u64>,
    /// RTSP sessions that exist now (for `max_sessions`).
    sessions: Arc<AtomicUsize>,
}

impl FaultState {
    pub(crate) fn new() -> Self {
        FaultState {
            current: Mutex::new(Faults::default()),
            hangup: watch::channel(0).0,
            sessions: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn set(&self, faults: Faults) {
        *self.current.lock() = faults;
    }

    /// A copy of the faults in force.
    pub(crate) fn get(&self) -> Faults {
        self.current.lock().clone()
    }

    /// Reads the faults in force without copying them.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Faults) -> T) -> T {
        f(&self.current.lock())
    }

    pub(crate) fn hang_up_all(&self) {
        self.hangup.send_modify(|g| *g = g.wrapping_add(1));
    }

    pub(crate) fn hangups(&self) -> watch::Receiver<u64> {
        self.hangup.subscribe()
    }

    /// Takes a session slot, unless `max_sessions` are taken already.
    pub(crate) fn try_open_session(&self) -> Option<SessionSlot> {
        let max = self.with(|f| f.max_sessions).unwrap_or(usize::MAX);
        self.sessions
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(SessionSlot {
            sessions: Arc::clone(&self.sessions),
        })
    }
}

/// One RTSP session's place in the count; freed when the session ends.
pub(crate) struct SessionSlot {
    sessions: Arc<AtomicUsize>,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Damages the slice data of an access unit (NAL units without start codes) in place of a
/// copy. Only bytes above 3 are changed, and only into bytes above 3, so no `00 00 0x`
/// sequence appears or disappears: start codes and emulation prevention stay intact, and
/// the result is still a valid NAL unit stream carrying wrong slice data.
pub(crate) fn corrupt_slices(nals: &[bytes::Bytes], salt: u32) -> Vec<bytes::Bytes> {
    nals.iter()
        .map(|nal| {
            let nal_type = nal.first().map_or(0, |h| h & 0x1F);
            // Coded slices only (1-5); keep the header and the first bytes of the slice
            // header so the decoder reaches the macroblock data before it is confused.
            if !(1..=5).contains(&nal_type) || nal.len() < 16 {
                return nal.clone();
            }
            let mut v = nal.to_vec();
            let start = 8;
            let span = v.len() - start;
            let hits = 16.min(span);
            for i in 0..hits {
                let pos = start + (i * span + (salt as usize % 7)) / hits;
                let b = v[pos];
                if b > 3 {
                    let mut c = b ^ (0x5A ^ (i as u8).wrapping_mul(37));
                    if c <= 3 {
                        c |= 0x80;
                    }
                    v[pos] = c;
                }
            }
            bytes::Bytes::from(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_keeps_the_byte_stream_valid() {
        let mut rng = fastrand::Rng::with_seed(7);
        for salt in 0..50 {
            let mut nal = vec![0x41u8];
            nal.extend((0..500).map(|_| rng.u8(..)));
            // Make it a valid NAL payload: no 00 00 0x, inserting emulation prevention.
            let mut clean = Vec::new();
            for b in nal {
                let n = clean.len();
                if n >= 2 && clean[n - 1] == 0 && clean[n - 2] == 0 && b <= 3 {
                    clean.push(3);
                }
                clean.push(b);
            }
            let out = corrupt_slices(&[bytes::Bytes::from(clean.clone())], salt);
            assert_ne!(out[0], clean, "changed");
            assert_eq!(out[0].len(), clean.len());
            for (a, b) in out[0].iter().zip(&clean) {
                assert_eq!(*a <= 3, *b <= 3, "bytes <= 3 are never made or unmade");
            }
        }
        // Parameter sets are left alone.
        let sps = bytes::Bytes::from_static(&[
            0x67, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        ]);
        assert_eq!(corrupt_slices(std::slice::from_ref(&sps), 1)[0], sps);
    }

    #[test]
    fn session_slots_are_counted() {
        let f = FaultState::new();
        let a = f.try_open_session().unwrap();
        let _b = f.try_open_session().unwrap();
        f.set(Faults {
            max_sessions: Some(2),
            ..Faults::default()
        });
        assert!(f.try_open_session().is_none());
        drop(a);
        assert!(f.try_open_session().is_some());
        assert_eq!(
            Faults::answer("describe", Reply::Silence).reply_for("DESCRIBE"),
            Some(Reply::Silence)
        );
        assert_eq!(
            Faults::answer("*", Reply::Close).reply_for("PLAY"),
            Some(Reply::Close)
        );
        assert_eq!(
            Faults::answer("SETUP", Reply::Close).reply_for("PLAY"),
            None
        );
    }
}
