use super::message::{choose_transport, join_path, normalize_path};
use super::session::ct_eq;
use super::*;

fn parse(s: &[u8]) -> (Parsed, BytesMut) {
    let mut b = BytesMut::from(s);
    let p = parse_next(&mut b);
    (p, b)
}

#[test]
fn parses_requests_and_skips_interleaved() {
    let mut b = BytesMut::from(
        &b"\r\n$\x01\x00\x03abcOPTIONS * RTSP/1.0\r\nCSeq: 7\r\nX: a\r\n  b\r\n\r\nSET_PARAMETER rtsp://h/demo RTSP/1.0\nCSeq: 8\nContent-Length: 3\n\nxyzGET"[..],
    );
    assert!(matches!(
        parse_next(&mut b),
        Parsed::Interleaved { channel: 1, len: 3 }
    ));
    let Parsed::Request(r) = parse_next(&mut b) else {
        panic!()
    };
    assert_eq!((r.method.as_str(), r.uri.as_str()), ("OPTIONS", "*"));
    assert_eq!(r.header("cseq"), Some("7"));
    assert_eq!(r.header("X"), Some("a b"));
    let Parsed::Request(r) = parse_next(&mut b) else {
        panic!()
    };
    assert_eq!(r.method, "SET_PARAMETER");
    assert_eq!(&r.body[..], b"xyz");
    assert!(matches!(parse_next(&mut b), Parsed::Incomplete));
    assert_eq!(&b[..], b"GET");
}

#[test]
fn incomplete_and_bad_input() {
    assert!(matches!(parse(b"$\x00\x10").0, Parsed::Incomplete));
    assert!(matches!(parse(b"$\x00\x00\x05abc").0, Parsed::Incomplete));
    assert!(matches!(
        parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n").0,
        Parsed::Incomplete
    ));
    assert!(matches!(
        parse(b"PLAY x RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 5\r\n\r\nab").0,
        Parsed::Incomplete
    ));
    assert!(matches!(
        parse(b"GET / HTTP/1.1\r\n\r\n").0,
        Parsed::Bad { status: 400, .. }
    ));
    assert!(matches!(
        parse(b"OPTIONS * RTSP/2.0\r\nCSeq: 3\r\n\r\n").0,
        Parsed::Bad { status: 505, cseq: Some(ref c), .. } if c == "3"
    ));
    assert!(matches!(
        parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 999999\r\n\r\n").0,
        Parsed::Bad { status: 413, .. }
    ));
    assert!(matches!(
        parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 3\r\nContent-Length: -1\r\n\r\n").0,
        Parsed::Bad { status: 400, .. }
    ));
    assert!(matches!(
        parse(b"OPTIONS * RTSP/1.0\r\nno colon\r\n\r\n").0,
        Parsed::Bad { status: 400, .. }
    ));
    // A bare CR in a value would be echoed (CSeq) and split the response (found by
    // the rtsp_request fuzz target).
    assert!(matches!(
        parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\x7f\r\n\r\n").0,
        Parsed::Bad {
            status: 400,
            cseq: None,
            ..
        }
    ));
    assert!(matches!(
        parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\x00\r\n\r\n").0,
        Parsed::Bad { status: 400, .. }
    ));
    assert!(matches!(
        parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: a\r\n b\rc\r\n\r\n").0,
        Parsed::Bad { status: 400, .. }
    ));
    let Parsed::Request(r) = parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: a\tb\r\n\r\n").0 else {
        panic!("a tab is fine")
    };
    assert_eq!(r.header("X"), Some("a\tb"));
    assert!(matches!(
        parse(b"\xff\xfe * RTSP/1.0\r\n\r\n").0,
        Parsed::Bad { status: 400, .. }
    ));
    let huge = vec![b'A'; MAX_HEAD + 10];
    assert!(matches!(parse(&huge).0, Parsed::Bad { status: 400, .. }));
    let many: String = std::iter::once("OPTIONS * RTSP/1.0\r\n".to_owned())
        .chain((0..100).map(|i| format!("H{i}: v\r\n")))
        .chain(std::iter::once("\r\n".to_owned()))
        .collect();
    assert!(matches!(
        parse(many.as_bytes()).0,
        Parsed::Bad { status: 400, .. }
    ));
    // Arbitrary bytes never panic.
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..2000 {
        let len = rng.usize(0..64);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        if rng.bool() {
            bytes.extend_from_slice(b"\r\n\r\n");
        }
        let mut b = BytesMut::from(&bytes[..]);
        for _ in 0..4 {
            if matches!(parse_next(&mut b), Parsed::Incomplete | Parsed::Bad { .. }) {
                break;
            }
        }
    }
}

#[test]
fn transports() {
    assert_eq!(
        choose_transport("RTP/AVP/TCP;unicast;interleaved=0-1"),
        Some(0)
    );
    assert_eq!(
        choose_transport("RTP/AVP/TCP;unicast;interleaved=4-5;mode=\"PLAY\""),
        Some(4)
    );
    assert_eq!(choose_transport("rtp/avp/tcp;interleaved=2"), Some(2));
    assert_eq!(choose_transport("RTP/AVP/TCP;unicast"), Some(0));
    assert_eq!(
        choose_transport("RTP/AVP;unicast;client_port=5000-5001"),
        None
    );
    assert_eq!(
        choose_transport("RTP/AVP/UDP;unicast;client_port=5000-5001"),
        None
    );
    assert_eq!(
        choose_transport(
            "RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=0-1"
        ),
        Some(0)
    );
    assert_eq!(choose_transport("RTP/AVP/TCP;multicast"), None);
    assert_eq!(choose_transport("RTP/AVP/TCP;interleaved=0-2"), None);
    assert_eq!(choose_transport("RTP/AVP/TCP;interleaved=255"), None);
    assert_eq!(choose_transport("RTP/AVP/TCP;interleaved=x"), None);
    assert_eq!(choose_transport("RTP/AVP/TCP;mode=record"), None);
    assert_eq!(choose_transport(""), None);
}

#[test]
fn response_format() {
    let mut r = Response::new(200).header("Public", PUBLIC);
    r.body = Some(("application/sdp", b"v=0\r\n".to_vec()));
    let s = String::from_utf8(r.serialize(Some("5"))).unwrap();
    assert!(s.starts_with("RTSP/1.0 200 OK\r\nCSeq: 5\r\n"), "{s}");
    assert!(s.contains("\r\nContent-Length: 5\r\n\r\nv=0\r\n"), "{s}");
    let s = String::from_utf8(Response::new(461).serialize(None)).unwrap();
    assert!(
        s.starts_with("RTSP/1.0 461 Unsupported Transport\r\n"),
        "{s}"
    );
    assert!(s.ends_with("\r\n\r\n"));
}

#[test]
fn paths() {
    assert_eq!(normalize_path("/demo/"), "/demo");
    assert_eq!(normalize_path("/"), "/");
    assert_eq!(normalize_path(""), "/");
    assert_eq!(join_path("/demo", TRACK), "/demo/trackID=0");
    assert_eq!(join_path("/", TRACK), "/trackID=0");
    assert!(ct_eq(b"a:b", b"a:b"));
    assert!(!ct_eq(b"a:b", b"a:c"));
    assert!(!ct_eq(b"a:b", b"a:bc"));
}
