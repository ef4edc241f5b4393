//! The decoder choice end to end, against GStreamer's RTSP server (x264 streams, which is
//! what cameras send): each choice gives snapshots with the colour bars, and the status
//! names the decoder that runs.

use std::sync::OnceLock;

use camkit::{CameraConfig, CameraManager, DecoderChoice, SnapshotOptions};
use camkit_tests::{check_smpte, GstServer};

fn server() -> &'static GstServer {
    static SERVER: OnceLock<GstServer> = OnceLock::new();
    SERVER.get_or_init(|| GstServer::start().expect("GStreamer RTSP server starts"))
}

/// Connects with `decoder`, takes two snapshots (the first catches up on the GOP, the
/// second comes from continuous decoding in the grace period) and returns the status.
async fn snapshots_with(path: &str, decoder: DecoderChoice) -> camkit::CameraStatus {
    let cams = CameraManager::new();
    let what = format!("{path} with {decoder}");
    let st = cams
        .connect(CameraConfig::from_url("gst", server().url(path)).decoder(decoder))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    for _ in 0..2 {
        let f = cams
            .snapshot("gst", SnapshotOptions::full())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        check_smpte(&what, &f.jpeg, 640, 360);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let after = cams.status("gst").unwrap();
    assert_eq!(after.decoder, st.decoder, "{what}");
    assert!(after.frames_decoded > 0, "{what}");
    assert_eq!(after.last_error, None, "{what}");
    cams.disconnect("gst").await.unwrap();
    st
}

/// High profile with each choice; `auto` is libavcodec here (the test command installs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_decoder_choice_shows_the_bars_and_names_itself() {
    let st = snapshots_with("/high", DecoderChoice::OpenH264).await;
    assert_eq!(st.decoder, "openh264");
    let st = snapshots_with("/high", DecoderChoice::Libavcodec).await;
    assert!(st.decoder.starts_with("libavcodec 5") || st.decoder.starts_with("libavcodec 6"));
    let libav = st.decoder;
    let st = snapshots_with("/high", DecoderChoice::Auto).await;
    assert_eq!(st.decoder, libav, "auto picks libavcodec where it loads");
}

/// Main and Baseline profiles through libavcodec too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libavcodec_decodes_main_and_baseline() {
    for path in ["/main", "/baseline"] {
        let st = snapshots_with(path, DecoderChoice::Libavcodec).await;
        assert!(st.decoder.starts_with("libavcodec "), "{}", st.decoder);
    }
}
