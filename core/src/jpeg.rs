//! JPEG encoding straight from I420 planes (libjpeg-turbo, SIMD), with no RGB pass.
//!
//! A `turbojpeg::Compressor` is costly to create (it allocates libjpeg state), so each
//! thread keeps one.

use std::cell::RefCell;

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};
use crate::picture::Picture;

thread_local! {
    static COMPRESSOR: RefCell<Option<turbojpeg::Compressor>> = const { RefCell::new(None) };
}

/// Encodes a picture as a baseline JPEG (4:2:0) at `quality` (1–100).
pub fn encode_i420(p: &Picture, quality: u8) -> Result<Bytes> {
    let (cw, ch) = Picture::chroma_dims(p.width, p.height);
    if p.width == 0
        || p.height == 0
        || p.y.len() < (p.width * p.height) as usize
        || p.u.len() < (cw * ch) as usize
        || p.v.len() < (cw * ch) as usize
    {
        return Err(Error::new(
            ErrorKind::Internal,
            format!("picture planes do not match {}x{}", p.width, p.height),
        ));
    }
    // libjpeg-turbo reads the luma plane in whole 2x2 blocks: odd sizes need a luma plane
    // padded to even width and height. Rare for cameras, so the copy costs nothing in the
    // common case.
    let (pw, ph) = (
        p.width.next_multiple_of(2) as usize,
        p.height.next_multiple_of(2) as usize,
    );
    let padded;
    let (y_plane, y_stride): (&[u8], usize) = if (pw, ph) != (p.width as usize, p.height as usize) {
        let w = p.width as usize;
        let mut y = Vec::with_capacity(pw * ph);
        for row in 0..ph {
            let src = &p.y[row.min(p.height as usize - 1) * w..][..w];
            y.extend_from_slice(src);
            if pw > w {
                y.push(src[w - 1]);
            }
        }
        padded = y;
        (&padded, pw)
    } else {
        (&p.y, pw)
    };
    let image = turbojpeg::YuvPlanesImage {
        y_plane,
        u_plane: &p.u[..],
        v_plane: &p.v[..],
        width: p.width as usize,
        height: p.height as usize,
        y_stride,
        u_stride: cw as usize,
        v_stride: cw as usize,
        subsamp: turbojpeg::Subsamp::Sub2x2,
    };
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(turbojpeg::Compressor::new().map_err(jpeg_err)?);
        }
        let c = slot.as_mut().expect("set above");
        c.set_quality(quality.clamp(1, 100) as i32)
            .map_err(jpeg_err)?;
        let buf = c.compress_yuv_planes_to_vec(&image).map_err(jpeg_err)?;
        Ok(Bytes::from(buf))
    })
}

/// Decodes a JPEG to an I420 picture (used for MJPEG cameras when a resize or a different
/// quality is asked).
pub fn decode_to_i420(jpeg: &[u8]) -> Result<Picture> {
    let img = turbojpeg::decompress_to_yuv(jpeg).map_err(jpeg_err)?;
    if img.subsamp != turbojpeg::Subsamp::Sub2x2 {
        // Re-encode any other subsampling through RGB: rare for cameras, correct anyway.
        let rgb = turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB).map_err(jpeg_err)?;
        return Ok(rgb_to_i420(
            &rgb.pixels,
            rgb.pitch,
            rgb.width as u32,
            rgb.height as u32,
        ));
    }
    let (w, h) = (img.width as u32, img.height as u32);
    let (cw, ch) = Picture::chroma_dims(w, h);
    let align = img.align;
    let ystride = (img.width).div_ceil(align) * align;
    let cstride = (cw as usize).div_ceil(align) * align;
    let yh = img.height;
    let ch_rows = img.height.div_ceil(2);
    let (yp, rest) = img.pixels.split_at(ystride * yh);
    let (up, vp) = rest.split_at(cstride * ch_rows);
    Picture::from_strided(w, h, [(yp, ystride), (up, cstride), (vp, cstride)])
        .filter(|_| ch as usize <= ch_rows)
        .map(|mut p| {
            // JFIF JPEGs are full range.
            p.full_range = true;
            p
        })
        .ok_or_else(|| Error::new(ErrorKind::Decode, "JPEG planes have an unexpected layout"))
}

fn rgb_to_i420(rgb: &[u8], pitch: usize, w: u32, h: u32) -> Picture {
    let (cw, ch) = Picture::chroma_dims(w, h);
    let (wu, hu) = (w as usize, h as usize);
    let mut y = vec![0u8; wu * hu];
    let mut u = vec![128u8; (cw * ch) as usize];
    let mut v = vec![128u8; (cw * ch) as usize];
    for r in 0..hu {
        for c in 0..wu {
            let i = r * pitch + c * 3;
            let (rr, gg, bb) = (rgb[i] as f32, rgb[i + 1] as f32, rgb[i + 2] as f32);
            y[r * wu + c] = (0.299 * rr + 0.587 * gg + 0.114 * bb).round() as u8;
            if r % 2 == 0 && c % 2 == 0 {
                let ci = (r / 2) * cw as usize + c / 2;
                u[ci] = (128.0 - 0.168_736 * rr - 0.331_264 * gg + 0.5 * bb)
                    .round()
                    .clamp(0.0, 255.0) as u8;
                v[ci] = (128.0 + 0.5 * rr - 0.418_688 * gg - 0.081_312 * bb)
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
        }
    }
    Picture {
        width: w,
        height: h,
        y,
        u,
        v,
        full_range: true,
    }
}

/// Reads a JPEG's dimensions without decoding it.
pub fn dimensions(jpeg: &[u8]) -> Result<(u32, u32)> {
    let h = turbojpeg::read_header(jpeg).map_err(jpeg_err)?;
    Ok((h.width as u32, h.height as u32))
}

fn jpeg_err(e: turbojpeg::Error) -> Error {
    Error::new(ErrorKind::Decode, format!("JPEG: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(w: u32, h: u32) -> Picture {
        // Left half dark, right half bright, neutral chroma.
        let (cw, ch) = Picture::chroma_dims(w, h);
        let mut y = vec![0u8; (w * h) as usize];
        for r in 0..h {
            for c in 0..w {
                y[(r * w + c) as usize] = if c < w / 2 { 30 } else { 220 };
            }
        }
        Picture {
            width: w,
            height: h,
            y,
            u: vec![128; (cw * ch) as usize],
            v: vec![128; (cw * ch) as usize],
            full_range: true,
        }
    }

    #[test]
    fn encodes_and_round_trips() {
        let p = bars(320, 240);
        let jpeg = encode_i420(&p, 90).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        assert_eq!(dimensions(&jpeg).unwrap(), (320, 240));
        let back = decode_to_i420(&jpeg).unwrap();
        assert_eq!((back.width, back.height), (320, 240));
        let at = |x: usize, y: usize| back.y[y * 320 + x] as i32;
        assert!((at(40, 100) - 30).abs() <= 3);
        assert!((at(280, 100) - 220).abs() <= 3);
    }

    #[test]
    fn odd_sizes_encode() {
        let p = bars(333, 201);
        let jpeg = encode_i420(&p, 70).unwrap();
        assert_eq!(dimensions(&jpeg).unwrap(), (333, 201));
    }

    #[test]
    fn bad_planes_are_an_error_not_a_panic() {
        let mut p = bars(64, 64);
        p.u.truncate(10);
        assert_eq!(encode_i420(&p, 80).unwrap_err().kind(), ErrorKind::Internal);
        assert_eq!(
            decode_to_i420(b"not a jpeg").unwrap_err().kind(),
            ErrorKind::Decode
        );
    }
}
