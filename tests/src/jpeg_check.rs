//! Decoding JPEGs and comparing colours, for tests that check what a snapshot shows.

/// Decodes a JPEG to packed 8-bit RGB with libjpeg-turbo; returns `(pixels, width, height)`,
/// `pixels.len() == width * height * 3`.
///
/// # Panics
///
/// If `jpeg` is not a decodable JPEG: this is an assertion helper, and a test that got a
/// broken JPEG has failed.
pub fn decode_jpeg_rgb(jpeg: &[u8]) -> (Vec<u8>, u32, u32) {
    let image = match turbojpeg::decompress(jpeg, turbojpeg::PixelFormat::RGB) {
        Ok(image) => image,
        Err(e) => panic!(
            "not a decodable JPEG ({} bytes, starts {:02x?}): {e}",
            jpeg.len(),
            &jpeg[..jpeg.len().min(8)]
        ),
    };
    let (w, h) = (image.width, image.height);
    // `decompress` allocates with pitch == width * 3, but repack if that ever changes so the
    // documented layout holds.
    let pixels = if image.pitch == w * 3 {
        image.pixels
    } else {
        image
            .pixels
            .chunks(image.pitch)
            .take(h)
            .flat_map(|row| &row[..w * 3])
            .copied()
            .collect()
    };
    let to_u32 = |v: usize| u32::try_from(v).expect("JPEG dimensions fit in u32");
    (pixels, to_u32(w), to_u32(h))
}

/// Mean `[r, g, b]` over the `w` x `h` rectangle whose top-left corner is (`x`, `y`) in a
/// packed RGB image `width` pixels wide. Averaging a patch rather than reading one pixel
/// makes colour checks immune to compression noise.
///
/// # Panics
///
/// If the rectangle is empty or does not lie inside the image.
pub fn mean_rgb(rgb: &[u8], width: u32, x: u32, y: u32, w: u32, h: u32) -> [f64; 3] {
    let (width, x, y, w, h) = (
        width as usize,
        x as usize,
        y as usize,
        w as usize,
        h as usize,
    );
    assert!(w > 0 && h > 0, "empty rectangle {w}x{h}");
    assert!(
        width > 0 && rgb.len().is_multiple_of(width * 3),
        "buffer of {} bytes is not whole RGB rows of width {width}",
        rgb.len()
    );
    let height = rgb.len() / (width * 3);
    assert!(
        x + w <= width && y + h <= height,
        "rectangle {w}x{h} at ({x},{y}) is outside the {width}x{height} image"
    );
    let mut sum = [0u64; 3];
    for row in y..y + h {
        let start = (row * width + x) * 3;
        for px in rgb[start..start + w * 3].chunks_exact(3) {
            for c in 0..3 {
                sum[c] += u64::from(px[c]);
            }
        }
    }
    let n = (w * h) as f64;
    sum.map(|s| s as f64 / n)
}

/// Asserts every channel of `actual` is within `tol` of `expected`; `what` names the patch
/// in the panic message (e.g. `"yellow bar of /h264-720 snapshot"`).
///
/// # Panics
///
/// When any channel differs by more than `tol`.
pub fn assert_color_near(actual: [f64; 3], expected: [u8; 3], tol: f64, what: &str) {
    let worst = (0..3)
        .map(|c| (actual[c] - f64::from(expected[c])).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= tol,
        "{what}: colour is ({:.1}, {:.1}, {:.1}), expected {expected:?} +-{tol} \
         (off by {worst:.1})",
        actual[0],
        actual[1],
        actual[2],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG made by libjpeg-turbo itself, so decoding is checked without a server.
    fn solid_jpeg(w: usize, h: usize, rgb: [u8; 3]) -> Vec<u8> {
        let pixels: Vec<u8> = std::iter::repeat_n(rgb, w * h).flatten().collect();
        let image = turbojpeg::Image {
            pixels: &pixels[..],
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        };
        turbojpeg::compress(image, 95, turbojpeg::Subsamp::Sub2x2)
            .expect("compress")
            .to_vec()
    }

    #[test]
    fn decodes_and_averages() {
        let jpeg = solid_jpeg(64, 48, [200, 40, 90]);
        let (rgb, w, h) = decode_jpeg_rgb(&jpeg);
        assert_eq!((w, h), (64, 48));
        assert_eq!(rgb.len(), 64 * 48 * 3);
        let m = mean_rgb(&rgb, w, 8, 8, 16, 16);
        assert_color_near(m, [200, 40, 90], 4.0, "solid patch");
    }

    #[test]
    fn mean_of_a_known_buffer_is_exact() {
        // 2x2 image: left column black, right column white.
        let rgb = [0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255];
        assert_eq!(mean_rgb(&rgb, 2, 0, 0, 2, 2), [127.5; 3]);
        assert_eq!(mean_rgb(&rgb, 2, 1, 0, 1, 2), [255.0; 3]);
    }

    #[test]
    #[should_panic(expected = "expected [0, 0, 255]")]
    fn far_colour_fails() {
        assert_color_near([255.0, 0.0, 0.0], [0, 0, 255], 10.0, "red vs blue");
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn rectangle_outside_image_fails() {
        mean_rgb(&[0; 12], 2, 1, 1, 2, 2);
    }

    #[test]
    #[should_panic(expected = "not a decodable JPEG")]
    fn garbage_is_reported() {
        decode_jpeg_rgb(b"definitely not a jpeg");
    }
}
