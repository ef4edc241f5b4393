//! Behaviours of real cameras that camkit's own demo camera does not have, reproduced with
//! GStreamer's gst-rtsp-server (tests/gst/rtsp_server.py): B-frames, and a stream whose first
//! packets do not carry the sequence number PLAY announced.

use std::sync::OnceLock;

use camkit::{CameraConfig, CameraManager, CameraState, DecoderChoice, SnapshotOptions};
use camkit_tests::{check_smpte, GstServer, GstServerOptions};

/// One server for the whole binary, with the `/shared-file` mount.
fn server() -> &'static GstServer {
    static SERVER: OnceLock<GstServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        GstServer::start_with(GstServerOptions {
            shared_file: true,
            ..Default::default()
        })
        .expect("GStreamer RTSP server starts")
    })
}

/// A camera sending H.264 High with B-frames (`x264enc bframes=2`, SPS/PPS in the SDP
/// only): the decoder holds pictures back for reordering, yet a snapshot right after
/// `connect` has a picture, with either decoder, several times in a row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bframes_snapshot_right_after_connect() {
    for decoder in [DecoderChoice::Libavcodec, DecoderChoice::OpenH264] {
        for round in 0..3 {
            let what = format!("/bframes with {decoder}, round {round}");
            let cams = CameraManager::new();
            let st = cams
                .connect(CameraConfig::from_url("b", server().url("/bframes")).decoder(decoder))
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(st.state, CameraState::Streaming, "{what}");
            assert_eq!(st.profile.as_deref(), Some("High"), "{what}");
            let f = cams
                .snapshot("b", SnapshotOptions::full())
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            check_smpte(&what, &f.jpeg, 640, 360);
            // Later snapshots (decoded continuously in the grace period) too.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let f = cams
                .snapshot("b", SnapshotOptions::full())
                .await
                .unwrap_or_else(|e| panic!("{what}, later: {e}"));
            check_smpte(&what, &f.jpeg, 640, 360);
            cams.close();
        }
    }
}

/// gst-rtsp-server's shared file media seeks back to the start for every new client, so
/// a client's first RTP packets need not carry the sequence number RTP-Info announced
/// (cameras whose encoder restarts do the same). Every connect in a row succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_file_media_connects_every_time() {
    let cams = CameraManager::new();
    for i in 0..16 {
        let id = format!("f{i}");
        let st = cams
            .connect(CameraConfig::from_url(&id, server().url("/shared-file")))
            .await
            .unwrap_or_else(|e| panic!("connect #{i}: {e}"));
        assert_eq!(st.state, CameraState::Streaming, "connect #{i}");
        let f = cams
            .snapshot(&id, SnapshotOptions::full())
            .await
            .unwrap_or_else(|e| panic!("snapshot #{i}: {e}"));
        check_smpte(&format!("#{i}"), &f.jpeg, 640, 360);
    }
    cams.close();
}
