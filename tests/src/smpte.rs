//! Where the SMPTE colour bars of `videotestsrc pattern=smpte` are, and what colour a
//! snapshot JPEG shows there.
//!
//! Geometry: the top two thirds of the picture hold seven equal-width vertical bars, bar
//! `i` spanning columns `i*w/7 .. (i+1)*w/7`; below them are the reverse-bars strip and the
//! -I/white/+Q/black/PLUGE row, which are not checked here. Sample points are bar centres
//! at `x = (2i+1)*w/14`, `y = h/3`, which stay valid when a picture is scaled.
//!
//! Colours: videotestsrc draws 100% bars as *limited-range* Y'CbCr (white is Y=235), and
//! camkit writes decoded Y'CbCr planes straight into the JPEG (no range or matrix
//! conversion), which a JPEG decoder then reads as full-range BT.601. So the RGB that comes
//! out is not the textbook 255/0 set, and it depends on the matrix the source used:
//! `gst/rtsp_server.py` pins BT.601 for sources up to 576 lines (640x360) and BT.709 above
//! (1280x720, 1920x1080), as cameras do. The tables below were measured by decoding frames
//! of the server's streams (H.264/H.265 decode -> I420 -> JPEG without conversion -> RGB
//! with libjpeg-turbo) and agree within 2 with the values computed from the standards; the
//! `smpte_table_matches_live_frames` test re-measures them.

/// Names of the seven bars, left to right, matching the order of [`smpte_bar_centers`].
pub const SMPTE_BAR_NAMES: [&str; 7] =
    ["white", "yellow", "cyan", "green", "magenta", "red", "blue"];

/// Bar colours as seen in a snapshot of a BT.601 source (640x360 mounts).
const BARS_BT601: [[u8; 3]; 7] = [
    [235, 235, 235],
    [235, 235, 11],
    [12, 235, 237],
    [13, 237, 13],
    [237, 12, 237],
    [238, 14, 13],
    [15, 14, 239],
];

/// Bar colours as seen in a snapshot of a BT.709 source (720p and 1080p mounts).
const BARS_BT709: [[u8; 3]; 7] = [
    [235, 235, 235],
    [233, 249, 20],
    [30, 255, 234],
    [29, 255, 20],
    [221, 0, 230],
    [220, 0, 16],
    [17, 0, 230],
];

/// Sources taller than this use BT.709 (same rule as `gst/rtsp_server.py`).
const SD_MAX_LINES: u32 = 576;

/// Centres of the seven bars in a `width` x `height` snapshot of a server stream of that
/// same size, with the RGB a JPEG decoder should find there: `(x, y, [r, g, b])`, ordered
/// as [`SMPTE_BAR_NAMES`].
///
/// Average a small patch around each point ([`crate::mean_rgb`]) and compare with a
/// tolerance of about 12 ([`crate::assert_color_near`]); compression noise is a few units.
/// If the snapshot was scaled from a different source size, use
/// [`smpte_bar_centers_scaled`]: the colours depend on the *source*.
pub fn smpte_bar_centers(width: u32, height: u32) -> Vec<(u32, u32, [u8; 3])> {
    smpte_bar_centers_scaled(width, height, height)
}

/// Like [`smpte_bar_centers`] for a `width` x `height` picture scaled from a stream
/// `source_height` lines tall (e.g. a 640x360 thumbnail of `/h264-1080`: pass 1080).
pub fn smpte_bar_centers_scaled(
    width: u32,
    height: u32,
    source_height: u32,
) -> Vec<(u32, u32, [u8; 3])> {
    let colours = if source_height > SD_MAX_LINES {
        &BARS_BT709
    } else {
        &BARS_BT601
    };
    // u64 so 2*i+1 times a large width cannot overflow.
    colours
        .iter()
        .enumerate()
        .map(|(i, &rgb)| {
            let x = (2 * i as u64 + 1) * u64::from(width) / 14;
            (x as u32, height / 3, rgb)
        })
        .collect()
}

/// Decodes `jpeg` and asserts that all seven bars have their expected colours within `tol`.
/// `source_height` is the height of the stream the snapshot came from (see
/// [`smpte_bar_centers_scaled`]); `what` names the snapshot in the panic message.
///
/// # Panics
///
/// If the JPEG does not decode or a bar is off by more than `tol`.
pub fn assert_smpte_bars(jpeg: &[u8], source_height: u32, tol: f64, what: &str) {
    let (rgb, width, height) = crate::decode_jpeg_rgb(jpeg);
    // A patch an eighth of a bar wide: big enough to average out noise, far from the
    // blurred bar edges.
    let half_w = (width / 112).max(1);
    let half_h = (height / 48).max(1);
    for ((x, y, expected), name) in smpte_bar_centers_scaled(width, height, source_height)
        .into_iter()
        .zip(SMPTE_BAR_NAMES)
    {
        let actual = crate::mean_rgb(&rgb, width, x - half_w, y - half_h, 2 * half_w, 2 * half_h);
        crate::assert_color_near(
            actual,
            expected,
            tol,
            &format!("{name} bar at ({x},{y}) of {what} ({width}x{height})"),
        );
    }
}

/// An expected colour as camkit's JPEGs show it: camkit expands the server's limited
/// ("TV") range to full range before encoding.
pub fn full_range(limited: [u8; 3]) -> [u8; 3] {
    limited.map(|c| ((c as f64 - 16.0) * 255.0 / 219.0).clamp(0.0, 255.0) as u8)
}

/// Asserts that a JPEG of the SMPTE-bars test source has the stream's size and every bar
/// in its colour (limited-range bars expanded to full range, as camkit's JPEGs are).
pub fn check_smpte(what: &str, jpeg: &[u8], width: u32, height: u32) {
    let (rgb, w, h) = crate::decode_jpeg_rgb(jpeg);
    assert_eq!((w, h), (width, height), "{what}");
    for (x, y, expected) in smpte_bar_centers(w, h) {
        let m = crate::mean_rgb(&rgb, w, x - 4, y - 4, 8, 8);
        crate::assert_color_near(
            m,
            full_range(expected),
            24.0,
            &format!("{what}: bar at ({x},{y})"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_are_inside_their_bars() {
        for (w, h) in [(640, 360), (1280, 720), (1920, 1080), (160, 90)] {
            let bars = smpte_bar_centers(w, h);
            assert_eq!(bars.len(), 7);
            for (i, &(x, y, _)) in bars.iter().enumerate() {
                let (lo, hi) = (i as u32 * w / 7, (i as u32 + 1) * w / 7);
                assert!(lo < x && x < hi, "bar {i} centre {x} not in {lo}..{hi}");
                assert!(y < 2 * h / 3);
            }
        }
    }

    #[test]
    fn colour_table_follows_the_source_matrix() {
        assert_eq!(smpte_bar_centers(640, 360)[1].2, [235, 235, 11]);
        assert_eq!(smpte_bar_centers(1280, 720)[1].2, [233, 249, 20]);
        // A thumbnail of a 1080p stream keeps the 1080p colours.
        assert_eq!(
            smpte_bar_centers_scaled(640, 360, 1080)[1].2,
            [233, 249, 20]
        );
        assert_eq!(smpte_bar_centers(640, 360)[0], (45, 120, [235, 235, 235]));
    }
}
