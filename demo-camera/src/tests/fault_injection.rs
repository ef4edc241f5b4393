//! Each fault as retina sees it on the wire; clearing the faults restores service.

use super::*;

/// Each `Reply` fault, as retina sees it at DESCRIBE; clearing the faults restores service.
#[tokio::test]
async fn fault_replies_at_describe() {
    use faults::{Faults, Reply};
    let cam = start(small()).await;
    let url = url::Url::parse(&cam.url()).unwrap();
    let describe = || {
        tokio::time::timeout(
            Duration::from_secs(2),
            Session::describe(url.clone(), SessionOptions::default()),
        )
    };
    for code in [401, 403, 404, 453, 454, 503] {
        cam.set_faults(Faults::answer("DESCRIBE", Reply::Status(code)));
        let err = describe().await.expect("answered").err().expect("refused");
        assert_eq!(err.status_code(), Some(code), "{err}");
    }
    for reply in [Reply::Garbage, Reply::Truncated, Reply::Close] {
        cam.set_faults(Faults::answer("*", reply));
        let err = describe().await.expect("answered").err().expect("refused");
        assert_eq!(err.status_code(), None, "{reply:?}: {err}");
    }
    cam.set_faults(Faults::answer("DESCRIBE", Reply::Silence));
    assert!(describe().await.is_err(), "no answer: the client times out");
    // Only the targeted method misbehaves.
    cam.set_faults(Faults::answer("PLAY", Reply::Status(500)));
    let err = open(&cam.url(), None, tcp())
        .await
        .err()
        .expect("PLAY fails");
    assert_eq!(err.status_code(), Some(500));
    cam.clear_faults();
    assert_eq!(cam.faults(), Faults::none());
    let mut d = open(&cam.url(), None, tcp()).await.unwrap();
    frames(&mut d, 2).await;
    drop(d);
    cam.stop().await;
}

/// What the SDP announces: H.265 instead of H.264; an audio track before the video.
#[tokio::test]
async fn fault_sdp_codec_and_audio() {
    use faults::{AnnouncedCodec, Audio, Faults};
    let cam = start(small()).await;
    let url = url::Url::parse(&cam.url()).unwrap();
    cam.set_faults(Faults {
        announce_codec: AnnouncedCodec::H265,
        ..Faults::default()
    });
    let s = Session::describe(url.clone(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(s.streams()[0].encoding_name(), "h265");
    drop(s);

    // Audio first, then video; packets on channels the client never set up are ignored
    // by retina, and the video (stream 1) plays.
    cam.set_faults(Faults {
        audio: Audio::AnnounceAndSend,
        ..Faults::default()
    });
    let mut s = Session::describe(url, SessionOptions::default())
        .await
        .unwrap();
    let media: Vec<&str> = s.streams().iter().map(|s| s.media()).collect();
    assert_eq!(media, ["audio", "video"]);
    assert_eq!(s.streams()[0].encoding_name(), "pcmu");
    s.setup(
        1,
        SetupOptions::default()
            .transport(tcp())
            .frame_format(FrameFormat::SIMPLE),
    )
    .await
    .unwrap();
    let mut d = s
        .play(PlayOptions::default())
        .await
        .unwrap()
        .demuxed()
        .unwrap();
    let got = frames(&mut d, 5).await;
    assert!(got.iter().all(|f| f.stream_id() == 1));
    drop(d);
    cam.stop().await;
}

/// Loss, corruption, a new resolution and hang-ups, as a playing retina client sees them.
#[tokio::test]
async fn fault_stream_damage() {
    use faults::Faults;
    let cam = start(small()).await;
    let mut d = open(&cam.url(), None, tcp()).await.unwrap();
    frames(&mut d, 2).await;

    // Loss: sequence numbers skip, retina says so.
    cam.set_faults(Faults {
        drop_one_packet_in: Some(3),
        ..Faults::default()
    });
    let mut lossy = 0;
    tokio::time::timeout(Duration::from_secs(5), async {
        while lossy < 3 {
            match d.next().await {
                Some(Ok(CodecItem::VideoFrame(f))) if f.loss() > 0 => lossy += 1,
                Some(Ok(_)) => {}
                other => panic!("stream ended: {other:?}"),
            }
        }
    })
    .await
    .expect("frames with loss");

    // Corruption: every frame arrives (the byte stream is valid), the pictures are wrong.
    cam.set_faults(Faults {
        corrupt_one_frame_in: Some(1),
        ..Faults::default()
    });
    frames(&mut d, 5).await;

    // New resolution: an IDR with new parameters.
    cam.clear_faults();
    cam.set_resolution(160, 96).unwrap();
    assert_eq!(
        cam.set_resolution(161, 96).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let resized = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(CodecItem::VideoFrame(f))) = d.next().await {
                if f.has_new_parameters() {
                    return f;
                }
            }
        }
    })
    .await
    .expect("new parameters");
    assert!(resized.is_random_access_point());
    let Some(retina::codec::ParametersRef::Video(v)) = d.streams()[0].parameters() else {
        panic!("video parameters")
    };
    assert_eq!(v.pixel_dimensions(), (160, 96));
    let pics = decode(&[resized]);
    assert_eq!((pics[0].width, pics[0].height), (160, 96));

    // Hang-up after 3 frames: the stream ends.
    cam.set_faults(Faults {
        hang_up_after_frames: Some(3),
        ..Faults::default()
    });
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match d.next().await {
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "hung up");
    cam.stop().await;
}

/// A single-session camera: a second SETUP gets 453 until the first session ends; a
/// dropped connection frees its session.
#[tokio::test]
async fn fault_one_session_at_a_time() {
    use faults::Faults;
    let cam = start(small()).await;
    cam.set_faults(Faults {
        max_sessions: Some(1),
        ..Faults::default()
    });
    let a = open(&cam.url(), None, tcp()).await.unwrap();
    let err = open(&cam.url(), None, tcp()).await.err().expect("busy");
    assert_eq!(err.status_code(), Some(453), "{err}");
    cam.drop_connections();
    drop(a);
    wait_for("session freed", || cam.sessions() == 0).await;
    let mut b = open(&cam.url(), None, tcp()).await.unwrap();
    frames(&mut b, 2).await;
    drop(b);
    cam.stop().await;
}
