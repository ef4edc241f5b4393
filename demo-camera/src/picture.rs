//! The synthetic picture: full-range BT.601 (JFIF) I420, generated directly in YUV.
//!
//! Layout, top to bottom:
//!
//! * the colour band ([`COLOR_BAND`]) across the top quarter, each bar placed by
//!   [`color_band_rect`] (edges on multiples of 16 pixels when the picture is wide enough, so
//!   neither chroma subsampling nor 8×8/16×16 transform blocks mix two colours);
//! * a dark panel with the wall clock (`HH:MM:SS.mmm UTC`) and the frame counter, drawn with
//!   a built-in 5×7 bitmap font scaled to the picture height;
//! * a bright box sliding left and right over a dark gradient, its position a function of the
//!   frame number.
//!
//! Everything that does not move (band, gradient) is rendered once into a background; each
//! frame is three `memcpy`s of that background plus a few small rectangle fills, so the
//! per-frame cost stays far below the encoder's.

use std::time::{SystemTime, UNIX_EPOCH};

use super::COLOR_BAND;

/// Full-range BT.601 (JFIF) RGB → YCbCr, rounded and clamped.
pub(crate) fn rgb_to_yuv([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
    let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [q(y), q(cb), q(cr)]
}

/// Full-range BT.601 (JFIF) YCbCr → RGB, rounded and clamped (the inverse of [`rgb_to_yuv`]).
#[cfg(test)]
pub(crate) fn yuv_to_rgb([y, u, v]: [u8; 3]) -> [u8; 3] {
    let (y, u, v) = (f32::from(y), f32::from(u) - 128.0, f32::from(v) - 128.0);
    let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [
        q(y + 1.402 * v),
        q(y - 0.344_136 * u - 0.714_136 * v),
        q(y + 1.772 * u),
    ]
}

/// Height of the colour band for a picture `height` pixels tall: a quarter of the picture,
/// rounded down to a multiple of 16 when that leaves at least 32 rows, else to an even number.
pub(crate) fn band_height(height: u32) -> u32 {
    let quarter = height / 4;
    if quarter >= 32 {
        quarter / 16 * 16
    } else {
        quarter & !1
    }
}

/// X coordinate of the left edge of bar `i` (`i == 8` is the right edge of the last bar).
fn bar_edge(i: usize, width: u32) -> u32 {
    let n = COLOR_BAND.len() as u64;
    let i = (i as u64).min(n);
    if i == 0 {
        return 0;
    }
    if i == n {
        return width;
    }
    let exact = i * u64::from(width) / n;
    // Align to 16 when bars are wide enough that rounding leaves each at least 16 wide;
    // otherwise to 2 so at least the 4:2:0 chroma samples never straddle two colours.
    let align: u64 = if u64::from(width) / n >= 32 { 16 } else { 2 };
    let edge = (exact + align / 2) / align * align;
    edge.min(u64::from(width)) as u32
}

/// See [`super::color_band_rect`].
pub(crate) fn color_band_rect(index: usize, width: u32, height: u32) -> (u32, u32, u32, u32) {
    if index >= COLOR_BAND.len() {
        return (0, 0, 0, 0);
    }
    let x0 = bar_edge(index, width);
    let x1 = bar_edge(index + 1, width);
    (x0, 0, x1.saturating_sub(x0), band_height(height))
}

/// 5×7 glyphs, one byte per row, bit 4 the leftmost pixel.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        _ => [0; 7],
    }
}

/// Width of one character cell in font pixels (5 glyph columns + 1 spacing).
const CELL_W: u32 = 6;
/// Height of one text line in font pixels (7 glyph rows + 1 spacing).
const CELL_H: u32 = 8;
/// The longest line drawn (`HH:MM:SS.mmm UTC`), in characters; sizes the panel.
const MAX_CHARS: u32 = 16;

/// A rectangle in luma pixels.
#[derive(Clone, Copy, Debug)]
struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

/// Where things go; computed once per picture size.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Size of one font pixel, in picture pixels.
    scale: u32,
    /// Top-left of the first text line.
    text_x: u32,
    text_y: u32,
    /// The dark panel behind the text.
    panel: Rect,
    /// The vertical range the box slides in, and its size.
    box_y: u32,
    box_w: u32,
    box_h: u32,
}

impl Layout {
    fn new(width: u32, height: u32) -> Self {
        let band_h = band_height(height);
        let scale = (height / 80).max(2);
        let margin = scale * 2;
        let text_x = margin & !1;
        let text_y = (band_h + margin) & !1;
        let panel = Rect {
            x: (text_x.saturating_sub(scale)) & !1,
            y: (text_y.saturating_sub(scale)) & !1,
            w: ((MAX_CHARS * CELL_W + 1) * scale + 1) & !1,
            h: ((2 * CELL_H + 1) * scale + 1) & !1,
        }
        .clip(width, height);
        let box_y = (panel.y + panel.h + margin).min(height) & !1;
        let room = height - box_y;
        let box_h = (room.saturating_sub(margin)).min((height / 5).max(2)) & !1;
        let box_w = (width / 8).max(2) & !1;
        Layout {
            scale,
            text_x,
            text_y,
            panel,
            box_y,
            box_w,
            box_h,
        }
    }
}

impl Rect {
    fn clip(self, width: u32, height: u32) -> Rect {
        let x = self.x.min(width);
        let y = self.y.min(height);
        Rect {
            x,
            y,
            w: self.w.min(width - x),
            h: self.h.min(height - y),
        }
    }
}

/// Renders the demo picture for successive frames.
pub(crate) struct PictureGenerator {
    width: u32,
    height: u32,
    fps: u32,
    layout: Layout,
    bg: [Vec<u8>; 3],
    planes: [Vec<u8>; 3],
}

/// Colours of the moving parts.
const BOX_RGB: [u8; 3] = [255, 140, 0];
const PANEL_RGB: [u8; 3] = [16, 16, 16];
const TEXT_RGB: [u8; 3] = [255, 255, 255];

impl PictureGenerator {
    /// A generator for `width`×`height` pictures (both even, at least 2) at `fps` frames/s.
    pub(crate) fn new(width: u32, height: u32, fps: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w / 2, h / 2);
        let mut bg = [vec![0u8; w * h], vec![128u8; cw * ch], vec![128u8; cw * ch]];
        let band_h = band_height(height) as usize;

        // Dark gradient: blue-grey, brighter to the upper left.
        let gradient = |x: usize, y: usize| -> [u8; 3] {
            let fx = x as f32 / w.max(1) as f32;
            let fy = y as f32 / h.max(1) as f32;
            let t = 1.0 - 0.5 * fx - 0.5 * fy;
            [
                (10.0 + 22.0 * t) as u8,
                (14.0 + 26.0 * t) as u8,
                (28.0 + 44.0 * t) as u8,
            ]
        };
        for y in 0..h {
            let row = &mut bg[0][y * w..(y + 1) * w];
            if y < band_h {
                continue;
            }
            for (x, px) in row.iter_mut().enumerate() {
                *px = rgb_to_yuv(gradient(x, y))[0];
            }
        }
        for cy in band_h / 2..ch {
            for cx in 0..cw {
                let [_, u, v] = rgb_to_yuv(gradient(cx * 2, cy * 2));
                bg[1][cy * cw + cx] = u;
                bg[2][cy * cw + cx] = v;
            }
        }
        // The colour band.
        for (i, (_, rgb)) in COLOR_BAND.iter().enumerate() {
            let (x, y, bw, bh) = color_band_rect(i, width, height);
            fill_rect(&mut bg, w, Rect { x, y, w: bw, h: bh }, rgb_to_yuv(*rgb));
        }

        PictureGenerator {
            width,
            height,
            fps: fps.max(1),
            layout: Layout::new(width, height),
            planes: bg.clone(),
            bg,
        }
    }

    /// Draws frame `frame_no`, showing wall time `now`.
    pub(crate) fn render(&mut self, frame_no: u64, now: SystemTime) {
        let w = self.width as usize;
        for (dst, src) in self.planes.iter_mut().zip(&self.bg) {
            dst.copy_from_slice(src);
        }
        let l = self.layout;

        // The sliding box: one sweep across in two seconds, then back.
        let travel = self.width.saturating_sub(l.box_w);
        let sweep = u64::from(self.fps) * 2;
        let phase = frame_no % (2 * sweep);
        let pos = if phase < sweep {
            phase
        } else {
            2 * sweep - phase
        };
        let box_x = (u64::from(travel) * pos / sweep) as u32 & !1;
        let boxr = Rect {
            x: box_x,
            y: l.box_y,
            w: l.box_w,
            h: l.box_h,
        }
        .clip(self.width, self.height);
        fill_rect(&mut self.planes, w, boxr, rgb_to_yuv(BOX_RGB));

        // Clock panel.
        fill_rect(&mut self.planes, w, l.panel, rgb_to_yuv(PANEL_RGB));
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since_epoch.as_secs() % 86_400;
        let clock = format!(
            "{:02}:{:02}:{:02}.{:03} UTC",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            since_epoch.subsec_millis()
        );
        let counter = format!("FRAME {frame_no:07}");
        let text_luma = rgb_to_yuv(TEXT_RGB)[0];
        self.draw_text(&clock, l.text_x, l.text_y, text_luma);
        self.draw_text(&counter, l.text_x, l.text_y + CELL_H * l.scale, text_luma);
    }

    /// Draws `text` in luma only (the panel underneath is neutral grey, so chroma is already right).
    fn draw_text(&mut self, text: &str, x0: u32, y0: u32, luma: u8) {
        let s = self.layout.scale;
        let w = self.width as usize;
        for (i, c) in text.chars().enumerate() {
            let gx = x0 + i as u32 * CELL_W * s;
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..5u32 {
                    if bits & (0x10 >> col) != 0 {
                        let r = Rect {
                            x: gx + col * s,
                            y: y0 + row as u32 * s,
                            w: s,
                            h: s,
                        }
                        .clip(self.width, self.height);
                        for y in r.y..r.y + r.h {
                            let start = y as usize * w + r.x as usize;
                            self.planes[0][start..start + r.w as usize].fill(luma);
                        }
                    }
                }
            }
        }
    }

    /// The current picture as `(y, u, v)` planes with strides `(width, width/2, width/2)`.
    pub(crate) fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        (&self.planes[0], &self.planes[1], &self.planes[2])
    }
}

/// Fills an even-aligned rectangle (already clipped) in all three planes.
fn fill_rect(planes: &mut [Vec<u8>; 3], width: usize, r: Rect, [y, u, v]: [u8; 3]) {
    let (x0, y0, rw, rh) = (r.x as usize, r.y as usize, r.w as usize, r.h as usize);
    for row in y0..y0 + rh {
        planes[0][row * width + x0..row * width + x0 + rw].fill(y);
    }
    let cw = width / 2;
    for crow in y0 / 2..(y0 + rh) / 2 {
        let start = crow * cw + x0 / 2;
        planes[1][start..start + rw / 2].fill(u);
        planes[2][start..start + rw / 2].fill(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_round_trip_through_yuv() {
        for (name, rgb) in COLOR_BAND {
            let back = yuv_to_rgb(rgb_to_yuv(rgb));
            for c in 0..3 {
                assert!(
                    (i32::from(back[c]) - i32::from(rgb[c])).abs() <= 2,
                    "{name}: {rgb:?} -> {back:?}"
                );
            }
        }
    }

    #[test]
    fn bars_tile_the_band_and_align() {
        for (w, h) in [
            (1280, 720),
            (640, 360),
            (320, 240),
            (1920, 1080),
            (176, 144),
            (64, 64),
        ] {
            let mut next_x = 0;
            for i in 0..8 {
                let (x, y, bw, bh) = color_band_rect(i, w, h);
                assert_eq!(x, next_x, "{w}x{h} bar {i}");
                assert_eq!(y, 0);
                assert!(bw >= 2, "{w}x{h} bar {i} width {bw}");
                assert!(bh >= 2 && bh <= h / 4, "{w}x{h} band height {bh}");
                assert_eq!(x % 2, 0);
                if w >= 256 {
                    assert_eq!(x % 16, 0, "{w}x{h} bar {i} at {x}");
                }
                next_x = x + bw;
            }
            assert_eq!(next_x, w);
            assert_eq!(color_band_rect(8, w, h), (0, 0, 0, 0));
        }
        assert_eq!(color_band_rect(1, 1280, 720), (160, 0, 160, 176));
    }

    #[test]
    fn picture_has_the_band_colours() {
        let (w, h) = (320u32, 240u32);
        let mut g = PictureGenerator::new(w, h, 15);
        g.render(42, SystemTime::now());
        let (py, pu, pv) = g.planes();
        for (i, (name, rgb)) in COLOR_BAND.iter().enumerate() {
            let (x, y, bw, bh) = color_band_rect(i, w, h);
            let (cx, cy) = ((x + bw / 2) as usize, (y + bh / 2) as usize);
            let yuv = [
                py[cy * w as usize + cx],
                pu[cy / 2 * w as usize / 2 + cx / 2],
                pv[cy / 2 * w as usize / 2 + cx / 2],
            ];
            assert_eq!(yuv, rgb_to_yuv(*rgb), "{name}");
        }
    }

    #[test]
    fn picture_changes_every_frame_and_renders_small_sizes() {
        let mut g = PictureGenerator::new(640, 360, 15);
        g.render(1, UNIX_EPOCH);
        let a = g.planes().0.to_vec();
        g.render(2, UNIX_EPOCH);
        assert_ne!(a, g.planes().0, "frame counter and box must move");
        // Tiny pictures clip instead of panicking.
        for (w, h) in [(2, 2), (16, 16), (64, 48), (3840, 2160)] {
            let mut g = PictureGenerator::new(w, h, 30);
            g.render(123_456, SystemTime::now());
        }
    }
}
