//! A machine without libavcodec, made by pointing `CAMKIT_LIBAVCODEC` (the file camkit
//! loads instead of searching for FFmpeg's) at a file that does not exist: `auto` falls
//! back to OpenH264, asking for libavcodec is a clear error naming the field, and an H.265
//! camera is `UnsupportedCodec` saying what to install.
//!
//! This binary has a single test on purpose: camkit loads libavcodec once per process, so
//! the variable must be set before anything decodes, and no other test may run first.

use camkit::{CameraConfig, CameraManager, DecoderBackend, DecoderChoice, ErrorKind};
use camkit_demo_camera::faults::{AnnouncedCodec, Faults};
use camkit_demo_camera::{DemoCamera, DemoCameraOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_libavcodec_auto_is_openh264_and_libavcodec_is_refused() {
    std::env::set_var("CAMKIT_LIBAVCODEC", "/nonexistent/libavcodec.so.59");

    let e = DecoderBackend::resolve(DecoderChoice::Libavcodec).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().starts_with("decoder:"), "{e}");
    assert!(e.message().contains("apt-get install libavcodec"), "{e}");
    assert!(e.message().contains("auto or openh264"), "{e}");
    assert!(e.message().contains("CAMKIT_LIBAVCODEC"), "says why: {e}");
    assert_eq!(
        DecoderBackend::resolve(DecoderChoice::Auto).unwrap(),
        DecoderBackend::OpenH264
    );

    let cam = DemoCamera::start(DemoCameraOptions {
        port: 0,
        width: 320,
        height: 240,
        ..Default::default()
    })
    .await
    .unwrap();
    let cams = CameraManager::new();
    let e = cams
        .connect(CameraConfig::from_url("a", cam.url()).decoder(DecoderChoice::Libavcodec))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().starts_with("decoder:"), "{e}");
    assert!(cams.list().is_empty(), "a refused config leaves no camera");

    let st = cams
        .connect(CameraConfig::from_url("a", cam.url()))
        .await
        .unwrap();
    assert_eq!(st.decoder, "openh264");
    let f = cams
        .snapshot("a", camkit::SnapshotOptions::full())
        .await
        .unwrap();
    assert_eq!((f.width, f.height), (320, 240));

    // An H.265 camera (its SDP says so): OpenH264 does not decode it, so connect fails at
    // DESCRIBE with `UnsupportedCodec`, saying to install libavcodec.
    cam.set_faults(Faults {
        announce_codec: AnnouncedCodec::H265,
        ..Faults::default()
    });
    let e = cams
        .connect(CameraConfig::from_url("h265", cam.url()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedCodec, "{e}");
    assert!(e.message().contains("H.265"), "{e}");
    assert!(e.message().contains("apt-get install libavcodec"), "{e}");
    assert!(
        cams.status("h265").is_err(),
        "a refused camera is forgotten"
    );
    cams.close();
    cam.stop().await;
}
