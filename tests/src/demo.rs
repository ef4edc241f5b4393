//! The demo camera as the integration tests start it, and the check of its picture.

use camkit_demo_camera::{color_band_rect, DemoCamera, DemoCameraOptions, COLOR_BAND};

use crate::{assert_color_near, decode_jpeg_rgb, mean_rgb};

/// A demo camera on a free loopback port, `width` x `height`, otherwise the defaults.
///
/// Panics (failing the test) when it cannot start.
pub async fn demo(width: u32, height: u32) -> DemoCamera {
    DemoCamera::start(DemoCameraOptions {
        port: 0,
        width,
        height,
        ..Default::default()
    })
    .await
    .expect("demo camera starts")
}

/// Asserts that `jpeg` is `width` x `height` and shows the demo camera's colour band at its
/// place for that size (the middle half of each bar, away from edges blurred by compression).
pub fn check_color_band(jpeg: &[u8], width: u32, height: u32) {
    let (rgb, w, h) = decode_jpeg_rgb(jpeg);
    assert_eq!((w, h), (width, height), "JPEG size");
    for (i, (name, color)) in COLOR_BAND.iter().enumerate() {
        let (x, y, bw, bh) = color_band_rect(i, w, h);
        let m = mean_rgb(&rgb, w, x + bw / 4, y + bh / 4, bw / 2, bh / 2);
        assert_color_near(m, *color, 24.0, name);
    }
}
