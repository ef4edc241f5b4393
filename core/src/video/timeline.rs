//! RTP timestamps to the 90 kHz media timeline of the MP4 track: presentation times,
//! decode times and sample durations.
//!
//! RTP carries only presentation times, in decode order. MP4 wants a decode time per
//! sample that increases strictly, and a composition offset (`trun` version 1, signed) from
//! it to the presentation time. Without B-frames decode time equals presentation time. With
//! them, the decode time advances by exactly one frame interval per frame (so each sample's
//! duration is the step to the next decode time, as players check), never behind the newest
//! presentation time by more than the reorder depth seen so far (a lost frame is caught up
//! in one step) and never ahead of it; the signed offset covers the frames shown before
//! their decode slot. A new session (reconnect) or a jump of more
//! than [`MAX_JUMP`] continues the timeline one frame after the last, so a player's
//! buffer never goes backwards.

/// The track's timescale: RTP's video clock.
pub(crate) const TIMESCALE: u32 = 90_000;

/// A jump this large between consecutive frames is a camera restart, not a pause.
const MAX_JUMP: i64 = 10 * TIMESCALE as i64;

/// Frame interval assumed until two frames show the real one (30 fps).
const DEFAULT_INTERVAL: i64 = 3_000;

/// How many recent frame-to-frame steps the interval estimate looks at.
const RECENT: usize = 16;

/// Times of one sample on the output timeline, in [`TIMESCALE`] units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SampleTimes {
    pub pts: i64,
    pub dts: i64,
    pub duration: u32,
}

/// The per-camera mapping from RTP time to the output timeline.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// The last frame's RTP timestamp (low 32 bits) and clock rate.
    last_rtp: Option<(u32, u32)>,
    last_pts: i64,
    max_pts: i64,
    last_dts: Option<i64>,
    steps: std::collections::VecDeque<i64>,
    /// The deepest reorder seen: how far a frame's presentation time fell behind the newest
    /// one before it (0 without B-frames).
    depth: i64,
}

impl Timeline {
    /// The next session's first frame continues the timeline instead of following its RTP
    /// time, which a reconnected camera starts anywhere.
    pub fn discontinuity(&mut self) {
        self.last_rtp = None;
    }

    /// The frame interval: the smallest recent step, forward or back (B-frames make
    /// larger ones, and lost frames too).
    fn interval(&self) -> i64 {
        self.steps.iter().copied().min().unwrap_or(DEFAULT_INTERVAL)
    }

    /// Times of the next frame in decode order, from its RTP timestamp (any width: only the
    /// low 32 bits are used, so wrap-around is a step like any other).
    pub fn next(&mut self, rtp: i64, clock_rate: u32) -> SampleTimes {
        let rtp = rtp as u32;
        let clock_rate = clock_rate.max(1);
        let pts = match (self.last_rtp, self.last_dts) {
            (Some((prev, prev_rate)), Some(_)) if prev_rate == clock_rate => {
                let step = i64::from(rtp.wrapping_sub(prev) as i32) * i64::from(TIMESCALE)
                    / i64::from(clock_rate);
                if step.abs() > MAX_JUMP {
                    self.max_pts + self.interval()
                } else {
                    // Both ways: x265 sends the B-frames of a mini-GOP newest first (P 3,
                    // B 2, B 1), where every forward step spans several frames and only
                    // the backward ones are a single interval.
                    if step != 0 {
                        if self.steps.len() == RECENT {
                            self.steps.pop_front();
                        }
                        self.steps.push_back(step.abs());
                    }
                    self.last_pts + step
                }
            }
            (_, Some(_)) => self.max_pts + self.interval(),
            (_, None) => 0,
        };
        let interval = self.interval();
        let max_pts = match self.last_dts {
            None => pts,
            Some(_) => self.max_pts.max(pts),
        };
        self.depth = self.depth.max(max_pts - pts);
        let dts = match self.last_dts {
            None => pts,
            Some(prev) => (prev + interval)
                .max(max_pts - self.depth)
                .min(max_pts)
                .max(prev + 1),
        };
        self.last_rtp = Some((rtp, clock_rate));
        self.last_pts = pts;
        self.max_pts = max_pts;
        self.last_dts = Some(dts);
        SampleTimes {
            pts,
            dts,
            duration: interval.clamp(1, i64::from(u32::MAX)) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_b_frames_decode_time_is_presentation_time() {
        let mut t = Timeline::default();
        let start = 1_000_000i64;
        for i in 0..10 {
            let s = t.next(start + i * 6000, 90_000);
            assert_eq!(s.pts, i * 6000);
            assert_eq!(s.dts, s.pts);
        }
        assert_eq!(t.next(start + 60_000, 90_000).duration, 6000);
    }

    /// An RTP timestamp passing 2^32 (every 13 h at 90 kHz, sooner from a random start).
    #[test]
    fn wrap_around_is_a_normal_step() {
        let mut t = Timeline::default();
        let near = u32::MAX as i64 - 2999;
        assert_eq!(t.next(near, 90_000).pts, 0);
        assert_eq!(t.next(near + 3000, 90_000).pts, 3000); // 0 after the wrap
        assert_eq!(t.next(3000 - 1, 90_000).pts, 5999);
    }

    /// Decode order I P B B P B B with presentation order I B B P B B P (one reference
    /// frame ahead), as x264 and GStreamer's encoders send with B-frames.
    #[test]
    fn b_frames_keep_decode_times_increasing_and_close() {
        let mut t = Timeline::default();
        let order = [0i64, 3, 1, 2, 6, 4, 5, 9, 7, 8];
        let mut last_dts = -1;
        for &k in &order {
            let s = t.next(90_000 + k * 3000, 90_000);
            assert_eq!(s.pts, k * 3000);
            assert!(s.dts > last_dts, "decode times strictly increase");
            assert!(
                (s.pts - s.dts).abs() <= 3 * 3000,
                "offset stays within the reorder depth"
            );
            last_dts = s.dts;
        }
    }

    /// Once the reorder depth and the interval are known (after the first frames of a
    /// session, which may bunch) the decode times step by one frame interval, which
    /// is what the sample durations say: a player reading `tfdt` then `trun` sees the same
    /// timeline either way (bunched decode times made ffmpeg report non-monotonic DTS).
    #[test]
    fn b_frames_decode_times_step_by_the_frame_interval() {
        let mut t = Timeline::default();
        let order = [0i64, 3, 1, 2, 6, 4, 5, 9, 7, 8, 12, 10, 11];
        let times: Vec<SampleTimes> = order
            .iter()
            .map(|&k| t.next(90_000 + k * 3000, 90_000))
            .collect();
        for w in times[6..].windows(2) {
            assert_eq!(w[1].dts - w[0].dts, 3000, "{times:?}");
            assert_eq!(w[0].duration, 3000);
        }
        assert!(
            times[6..].iter().all(|s| s.dts <= s.pts + 2 * 3000),
            "{times:?}"
        );
    }

    /// x265's order: the B-frames of each mini-GOP newest first (3, 2, 1), so no forward
    /// step is a single interval; the decode times still step by one (before, the interval
    /// was taken as three and ffmpeg reported non-monotonic DTS every third frame).
    #[test]
    fn b_frames_newest_first_decode_times_step_by_the_frame_interval() {
        let mut t = Timeline::default();
        let order = [0i64, 3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10, 15, 14, 13];
        let times: Vec<SampleTimes> = order
            .iter()
            .map(|&k| t.next(90_000 + k * 6000, 90_000))
            .collect();
        for w in times[6..].windows(2) {
            assert_eq!(w[1].dts - w[0].dts, 6000, "{times:?}");
            assert_eq!(w[0].duration, 6000);
        }
        assert!(
            times[6..].iter().all(|s| s.dts <= s.pts + 2 * 6000),
            "{times:?}"
        );
    }

    /// A frame lost in a B-frame stream: the decode time catches up in one step instead of
    /// falling further behind with every loss.
    #[test]
    fn a_lost_frame_is_caught_up() {
        let mut t = Timeline::default();
        // I P B B P B B, then the P at 12 is lost: B B P follow.
        let order = [0i64, 3, 1, 2, 6, 4, 5, 9, 7, 8, 15, 13, 14, 18, 16, 17];
        let mut last = None;
        for &k in &order {
            let s = t.next(90_000 + k * 3000, 90_000);
            if let Some(prev) = last {
                assert!(s.dts > prev);
            }
            assert!(s.pts - s.dts <= 2 * 3000 + 3000, "k={k}: {s:?}");
            last = Some(s.dts);
        }
    }

    /// A camera restarting: its RTP clock begins at a new random value.
    #[test]
    fn a_new_session_continues_after_the_last_frame() {
        let mut t = Timeline::default();
        t.next(500, 90_000);
        t.next(3500, 90_000);
        t.discontinuity();
        let s = t.next(77_777_777, 90_000);
        assert_eq!(s.pts, 6000);
        assert_eq!(t.next(77_780_777, 90_000).pts, 9000);
        // And a jump within a session is treated the same way.
        assert_eq!(t.next(7_780_777, 90_000).pts, 12_000);
    }
}
