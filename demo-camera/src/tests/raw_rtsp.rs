//! The RTSP state machine request by request, over a raw socket.

use super::*;

#[tokio::test]
async fn raw_rtsp_state_machine() {
    let cam = start(small()).await;
    let url = cam.url();
    let track = format!("{url}/trackID=0");
    let mut c = Raw::connect(&cam).await;

    let r = c.request("OPTIONS", "*", &[]).await;
    assert_eq!(r.status, 200);
    for m in [
        "DESCRIBE",
        "SETUP",
        "PLAY",
        "TEARDOWN",
        "GET_PARAMETER",
        "SET_PARAMETER",
    ] {
        assert!(r.header("Public").unwrap().contains(m));
    }
    assert_eq!(c.request("FOO", &url, &[]).await.status, 501);
    let r = c
        .request("DESCRIBE", &url, &[("Require", "funky-feature")])
        .await;
    assert_eq!(
        (r.status, r.header("Unsupported")),
        (551, Some("funky-feature"))
    );
    let other = url.replace("/demo", "/other");
    assert_eq!(c.request("DESCRIBE", &other, &[]).await.status, 404);
    assert_eq!(
        c.request("PLAY", &url, &[]).await.status,
        455,
        "PLAY before SETUP"
    );

    // Interleaved data from the client before a request is skipped.
    c.send_raw(b"$\x01\x00\x08\x80\xc9\x00\x01\x00\x00\x00\x00")
        .await;
    let r = c
        .request("DESCRIBE", &url, &[("Accept", "application/sdp")])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/sdp"));
    assert_eq!(r.header("Content-Base"), Some(format!("{url}/").as_str()));
    let sdp = String::from_utf8(r.body).unwrap();
    for needle in [
        "m=video 0 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
        "packetization-mode=1",
        "profile-level-id=",
        "sprop-parameter-sets=",
        "a=control:trackID=0",
        "a=framerate:30",
    ] {
        assert!(sdp.contains(needle), "{needle} missing from\n{sdp}");
    }

    let r = c
        .request(
            "SETUP",
            &track,
            &[("Transport", "RTP/AVP;unicast;client_port=5000-5001")],
        )
        .await;
    assert_eq!(r.status, 461);
    let r = c
        .request(
            "SETUP",
            &track,
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3")],
        )
        .await;
    assert_eq!(r.status, 200);
    let transport = r.header("Transport").unwrap().to_owned();
    assert!(
        transport.starts_with("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc="),
        "{transport}"
    );
    let session_hdr = r.header("Session").unwrap().to_owned();
    assert!(session_hdr.ends_with(";timeout=60"), "{session_hdr}");
    let session = session_hdr.split(';').next().unwrap().to_owned();
    let ssrc = u32::from_str_radix(transport.rsplit('=').next().unwrap(), 16).unwrap();

    assert_eq!(
        c.request("PLAY", &url, &[("Session", "nope")]).await.status,
        454
    );
    let r = c.request("PLAY", &url, &[("Session", &session)]).await;
    assert_eq!(r.status, 200);
    let rtp_info = r.header("RTP-Info").unwrap().to_owned();
    assert!(
        rtp_info.starts_with(&format!("url={track};seq=")),
        "{rtp_info}"
    );
    let seq: u16 = rtp_info
        .split(";seq=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    wait_for("playing", || cam.sessions() == 1).await;

    // Keepalives (with client RTCP in between) are answered while video flows.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.send_raw(b"$\x03\x00\x08\x80\xc9\x00\x01\x00\x00\x00\x00")
        .await;
    assert_eq!(
        c.request("GET_PARAMETER", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    assert_eq!(
        c.request("SET_PARAMETER", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    assert_eq!(
        c.request("OPTIONS", &url, &[("Session", &session)])
            .await
            .status,
        200
    );

    // RTP on channel 2, RTCP on 3; first packet has the announced seq and ssrc; the first
    // access unit starts with SPS.
    let rtp: Vec<&Vec<u8>> = c
        .interleaved
        .iter()
        .filter(|(ch, _)| *ch == 2)
        .map(|(_, p)| p)
        .collect();
    assert!(rtp.len() > 3, "{} RTP packets", rtp.len());
    assert!(c.interleaved.iter().all(|(ch, _)| *ch == 2 || *ch == 3));
    let first = rtp[0];
    assert_eq!(u16::from_be_bytes([first[2], first[3]]), seq);
    assert_eq!(
        u32::from_be_bytes([first[8], first[9], first[10], first[11]]),
        ssrc
    );
    assert_eq!(first[12] & 0x1F, 7, "first NAL is the SPS");
    for (i, p) in rtp.iter().enumerate() {
        assert_eq!(p[0] >> 6, 2, "RTP version");
        assert_eq!(p[1] & 0x7F, 96);
        assert!(p.len() - 12 <= super::rtp::MAX_PAYLOAD);
        assert_eq!(
            u16::from_be_bytes([p[2], p[3]]),
            seq.wrapping_add(i as u16),
            "consecutive sequence numbers"
        );
    }
    let sr = c
        .interleaved
        .iter()
        .find(|(ch, _)| *ch == 3)
        .expect("a sender report");
    assert_eq!(sr.1[1], 200);

    assert_eq!(
        c.request("PAUSE", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    wait_for("paused", || cam.sessions() == 0).await;
    assert_eq!(
        c.request("PLAY", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    wait_for("playing again", || cam.sessions() == 1).await;
    assert_eq!(
        c.request("TEARDOWN", &url, &[("Session", &session)])
            .await
            .status,
        200
    );
    wait_for("torn down", || cam.sessions() == 0).await;
    assert_eq!(
        c.request("PLAY", &url, &[("Session", &session)])
            .await
            .status,
        454
    );

    // Garbage closes the connection after a 400; the camera keeps serving others.
    c.send_raw(b"\x00\x01 garbage\r\n\r\n").await;
    let r = c.response().await;
    assert_eq!(r.status, 400);
    assert!(c.closed().await);
    let mut d = open(&url, None, tcp()).await.unwrap();
    frames(&mut d, 2).await;
    drop(d);
    cam.stop().await;
}
