//! The per-connection session state machine (Init → Ready → Playing): what each request
//! is answered with, and the RTP/RTCP a playing session sends.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::broadcast;

use super::message::{
    choose_transport, join_path, normalize_path, parse_next, Parsed, Request, Response, Target,
};
use super::{
    write_all, ServerConfig, AUDIO_PAYLOAD_TYPE, AUDIO_TRACK, CNAME, GARBAGE, PAYLOAD_TYPE, PUBLIC,
    REALM, SERVER, SESSION_TIMEOUT, SR_INTERVAL, TRACK,
};
use crate::encoder::{EncodedFrame, ViewerGuard};
use crate::faults::{self, AnnouncedCodec, Audio, Reply, SessionSlot};
use crate::rtp::{ntp_time, Packetizer};

/// A playing session's link to the encoder.
pub(super) struct Play {
    pub(super) rx: broadcast::Receiver<Arc<EncodedFrame>>,
    pub(super) _viewer: ViewerGuard,
    /// Skip access units until a keyframe captured at or after `start_rtp`.
    pub(super) waiting_keyframe: bool,
    /// The camera clock when PLAY was answered.
    pub(super) start_rtp: u32,
    pub(super) next_sender_report: Instant,
    /// Access units sent since PLAY (for the hang-up fault).
    pub(super) frames_sent: u32,
}

/// An RTSP session (created by SETUP, bound to its connection).
pub(super) struct Session {
    pub(super) id: String,
    /// Interleaved channel for the video's RTP, once set up; RTCP uses `channel + 1`.
    pub(super) channel: Option<u8>,
    pub(super) packetizer: Packetizer,
    /// Random per-session offset added to the camera's RTP clock (RFC 3550 section 5.1).
    pub(super) ts_offset: u32,
    pub(super) play: Option<Play>,
    /// The audio track's channel, when a fault announces audio and the client set it up.
    pub(super) audio_channel: Option<u8>,
    pub(super) audio_packetizer: Packetizer,
    /// Access units and RTP packets handed to this session (for the loss and corruption
    /// faults' "one in n").
    pub(super) frames_seen: u64,
    pub(super) packets_seen: u64,
    /// This session's place in the camera's session count.
    pub(super) _slot: SessionSlot,
}

/// One client connection.
pub(super) struct Conn {
    pub(super) cfg: Arc<ServerConfig>,
    pub(super) peer: SocketAddr,
    pub(super) local: SocketAddr,
    pub(super) session: Option<Session>,
    /// A `Silence` fault struck: requests are read and never answered.
    pub(super) silenced: bool,
}

/// What [`Conn::answer`] decided to send.
pub(super) enum Answer {
    Send(Vec<u8>),
    /// Nothing, and the connection stays open (a `Silence` fault).
    Nothing,
    /// These bytes (maybe none), then close the connection for the given reason.
    SendAndClose(Vec<u8>, &'static str),
}

impl Conn {
    /// Answers every complete request in `buf`. `Err` means close the connection.
    pub(super) async fn handle_buffered(
        &mut self,
        buf: &mut BytesMut,
        wr: &mut OwnedWriteHalf,
    ) -> Result<(), String> {
        loop {
            match parse_next(buf) {
                Parsed::Incomplete => return Ok(()),
                Parsed::Interleaved { channel, len } => {
                    tracing::trace!(peer = %self.peer, channel, len, "demo camera: skipped interleaved data from client");
                }
                Parsed::Request(_) if self.silenced => {}
                Parsed::Request(req) => {
                    let bytes = match self.answer(&req) {
                        Answer::Send(b) => b,
                        Answer::Nothing => continue,
                        Answer::SendAndClose(b, why) => {
                            if !b.is_empty() {
                                let _ = write_all(wr, &b).await;
                            }
                            return Err(why.into());
                        }
                    };
                    write_all(wr, &bytes).await?;
                }
                Parsed::Bad { status, cseq, why } => {
                    let resp = Response::new(status);
                    let _ = write_all(wr, &resp.serialize(cseq.as_deref())).await;
                    return Err(format!("bad request ({why})"));
                }
            }
        }
    }

    /// What to send for a request: the served response, or what a fault makes of it.
    pub(super) fn answer(&mut self, req: &Request) -> Answer {
        let cseq = req.header("CSeq");
        let fault = self.cfg.faults.with(|f| f.reply_for(&req.method));
        if let Some(reply) = fault {
            tracing::debug!(peer = %self.peer, method = %req.method, ?reply, "demo camera: fault");
        }
        match fault {
            None => {
                let resp = self.handle(req);
                tracing::debug!(
                    peer = %self.peer,
                    method = %req.method,
                    status = resp.status,
                    "demo camera: request"
                );
                Answer::Send(resp.serialize(cseq))
            }
            Some(Reply::Status(code)) => {
                let resp = if code == 401 {
                    Self::unauthorized()
                } else {
                    Response::new(code)
                };
                Answer::Send(resp.serialize(cseq))
            }
            Some(Reply::Garbage) => Answer::SendAndClose(GARBAGE.to_vec(), "fault: garbage"),
            Some(Reply::Truncated) => {
                let mut full = self.handle(req).serialize(cseq);
                let head = full
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(full.len());
                full.truncate(head / 2);
                Answer::SendAndClose(full, "fault: truncated response")
            }
            Some(Reply::Silence) => {
                self.silenced = true;
                Answer::Nothing
            }
            Some(Reply::Close) => Answer::SendAndClose(Vec::new(), "fault: closed without answer"),
        }
    }

    pub(super) fn handle(&mut self, req: &Request) -> Response {
        if req.header("CSeq").is_none() {
            return Response::new(400);
        }
        // No option tags are supported (RFC 2326 section 12.32).
        if let Some(tags) = req.header("Require").or(req.header("Proxy-Require")) {
            return Response::new(551).header("Unsupported", tags);
        }
        match req.method.as_str() {
            "OPTIONS" => Response::new(200).header("Public", PUBLIC),
            "DESCRIBE" => self.describe(req),
            "SETUP" => self.setup(req),
            "PLAY" => self.play(req),
            "PAUSE" => self.pause(req),
            "TEARDOWN" => self.teardown(req),
            "GET_PARAMETER" | "SET_PARAMETER" => self.parameter(req),
            "ANNOUNCE" | "RECORD" | "REDIRECT" => Response::new(405).header("Allow", PUBLIC),
            _ => Response::new(501).header("Public", PUBLIC),
        }
    }

    /// What the request URI names; `None` if it cannot be parsed.
    pub(super) fn target(&self, uri: &str) -> Option<Target> {
        if uri == "*" {
            return Some(Target::Any);
        }
        let parsed;
        let path = if let Ok(u) = url::Url::parse(uri) {
            parsed = u;
            parsed.path()
        } else if uri.starts_with('/') {
            uri.split(['?', '#']).next().unwrap_or(uri)
        } else {
            return None;
        };
        let path = normalize_path(path);
        let base = self.cfg.base_path.as_str();
        let audio = self.cfg.faults.with(|f| f.audio) != Audio::None;
        Some(if path == base {
            Target::Presentation
        } else if path == join_path(base, TRACK) {
            Target::Track
        } else if audio && path == join_path(base, AUDIO_TRACK) {
            Target::AudioTrack
        } else {
            Target::Unknown
        })
    }

    /// The absolute presentation URL, ending in `/`, as the client addressed us (without
    /// credentials): what `Content-Base` carries and relative controls resolve against.
    pub(super) fn base_url(&self, uri: &str) -> String {
        let dir = join_path(&self.cfg.base_path, "");
        if let Ok(mut u) = url::Url::parse(uri) {
            if u.has_host() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.set_fragment(None);
                u.set_path(&dir);
                return u.to_string();
            }
        }
        format!("rtsp://{}{dir}", self.local)
    }

    pub(super) fn authorized(&self, req: &Request) -> bool {
        let Some((user, pass)) = &self.cfg.credentials else {
            return true;
        };
        let Some((scheme, value)) = req
            .header("Authorization")
            .and_then(|h| h.trim().split_once(' '))
        else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("Basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value.trim()) else {
            return false;
        };
        ct_eq(&decoded, format!("{user}:{pass}").as_bytes())
    }

    pub(super) fn unauthorized() -> Response {
        Response::new(401).header("WWW-Authenticate", format!("Basic realm=\"{REALM}\""))
    }

    pub(super) fn session_header(s: &Session) -> String {
        format!("{};timeout={}", s.id, SESSION_TIMEOUT.as_secs())
    }

    /// The session named by the request, or the error response.
    pub(super) fn session_for(&mut self, req: &Request) -> Result<&mut Session, Response> {
        match (self.session.as_mut(), req.session_id()) {
            (Some(s), Some(id)) if s.id == id => Ok(s),
            (None, None) => Err(Response::new(455)),
            _ => Err(Response::new(454)),
        }
    }

    pub(super) fn sdp(&self) -> String {
        let (codec, audio) = self.cfg.faults.with(|f| (f.announce_codec, f.audio));
        let p = self.cfg.encoder.params().unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD;
        let profile_level_id = p
            .sps
            .get(1..4)
            .map(|b| format!("{:02X}{:02X}{:02X}", b[0], b[1], b[2]))
            .unwrap_or_else(|| "42C01F".into());
        let codec = match codec {
            AnnouncedCodec::H264 => format!(
                "a=rtpmap:{PAYLOAD_TYPE} H264/90000\r\n\
                 a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;profile-level-id={profile_level_id};sprop-parameter-sets={sps},{pps}\r\n",
                sps = b64.encode(&p.sps),
                pps = b64.encode(&p.pps),
            ),
            AnnouncedCodec::H265 => format!("a=rtpmap:{PAYLOAD_TYPE} H265/90000\r\n"),
            AnnouncedCodec::Mpeg4 => format!("a=rtpmap:{PAYLOAD_TYPE} MP4V-ES/90000\r\n"),
        };
        // The audio track comes first, so the video is not stream 0: a client must pick
        // the video track by its media type, not by position.
        let audio = match audio {
            Audio::None => String::new(),
            Audio::Announce | Audio::AnnounceAndSend => format!(
                "m=audio 0 RTP/AVP {AUDIO_PAYLOAD_TYPE}\r\n\
                 a=rtpmap:{AUDIO_PAYLOAD_TYPE} PCMU/8000\r\n\
                 a=control:{AUDIO_TRACK}\r\n"
            ),
        };
        let (family, addr, any) = match self.local.ip() {
            IpAddr::V4(a) => ("IP4", a.to_string(), "0.0.0.0"),
            IpAddr::V6(a) => ("IP6", a.to_string(), "::"),
        };
        let session_id = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        format!(
            "v=0\r\n\
             o=- {session_id} 1 IN {family} {addr}\r\n\
             s=camkit demo camera\r\n\
             c=IN {family} {any}\r\n\
             t=0 0\r\n\
             a=tool:{SERVER}\r\n\
             a=range:npt=0-\r\n\
             a=control:*\r\n\
             {audio}\
             m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n\
             b=AS:{kbps}\r\n\
             {codec}\
             a=framerate:{fps}\r\n\
             a=control:{TRACK}\r\n",
            kbps = self.cfg.bitrate_bps.div_ceil(1000),
            fps = self.cfg.fps,
        )
    }

    pub(super) fn describe(&mut self, req: &Request) -> Response {
        if !self.authorized(req) {
            return Self::unauthorized();
        }
        match self.target(&req.uri) {
            None => return Response::new(400),
            Some(Target::Presentation) => {}
            Some(_) => return Response::new(404),
        }
        let mut resp = Response::new(200).header("Content-Base", self.base_url(&req.uri));
        resp.body = Some(("application/sdp", self.sdp().into_bytes()));
        resp
    }

    pub(super) fn setup(&mut self, req: &Request) -> Response {
        if !self.authorized(req) {
            return Self::unauthorized();
        }
        let audio = match self.target(&req.uri) {
            None => return Response::new(400),
            Some(Target::Track | Target::Presentation) => false,
            Some(Target::AudioTrack) => true,
            Some(_) => return Response::new(404),
        };
        let Some(transport) = req.header("Transport") else {
            return Response::new(400);
        };
        let Some(channel) = choose_transport(transport) else {
            tracing::debug!(peer = %self.peer, transport, "demo camera: unsupported transport");
            return Response::new(461);
        };
        let session = match (self.session.as_mut(), req.session_id()) {
            (Some(s), Some(id)) if s.id != id => return Response::new(454),
            (None, Some(_)) => return Response::new(454),
            (Some(s), _) if s.play.is_some() => return Response::new(455),
            (Some(s), _) => s,
            (None, None) => {
                let Some(slot) = self.cfg.faults.try_open_session() else {
                    tracing::debug!(peer = %self.peer, "demo camera: session limit reached (fault)");
                    return Response::new(453);
                };
                let id = format!("{:016X}", fastrand::u64(..));
                tracing::debug!(peer = %self.peer, session = %id, "demo camera: session created");
                self.session.insert(Session {
                    id,
                    channel: None,
                    packetizer: Packetizer::new(fastrand::u32(..), PAYLOAD_TYPE, fastrand::u16(..)),
                    ts_offset: fastrand::u32(..),
                    play: None,
                    audio_channel: None,
                    audio_packetizer: Packetizer::new(
                        fastrand::u32(..),
                        AUDIO_PAYLOAD_TYPE,
                        fastrand::u16(..),
                    ),
                    frames_seen: 0,
                    packets_seen: 0,
                    _slot: slot,
                })
            }
        };
        let ssrc = if audio {
            session.audio_channel = Some(channel);
            session.audio_packetizer.ssrc()
        } else {
            session.channel = Some(channel);
            session.packetizer.ssrc()
        };
        Response::new(200)
            .header(
                "Transport",
                format!(
                    "RTP/AVP/TCP;unicast;interleaved={}-{};ssrc={ssrc:08X}",
                    channel,
                    channel + 1,
                ),
            )
            .header("Session", Self::session_header(session))
    }

    pub(super) fn play(&mut self, req: &Request) -> Response {
        if !self.authorized(req) {
            return Self::unauthorized();
        }
        match self.target(&req.uri) {
            None => return Response::new(400),
            Some(Target::Unknown) => return Response::new(404),
            Some(_) => {}
        }
        let track_url = format!("{}{TRACK}", self.base_url(&req.uri));
        let encoder = Arc::clone(&self.cfg.encoder);
        let peer = self.peer;
        let s = match self.session_for(req) {
            Ok(s) => s,
            Err(r) => return r,
        };
        let play = s.play.get_or_insert_with(|| {
            // Read the clock before asking for the IDR, so the IDR is never "before PLAY".
            let start_rtp = encoder.rtp_now();
            let (rx, viewer) = encoder.start_viewer();
            tracing::info!(%peer, session = %s.id, "demo camera: client playing");
            Play {
                rx,
                _viewer: viewer,
                waiting_keyframe: true,
                start_rtp,
                next_sender_report: Instant::now(),
                frames_sent: 0,
            }
        });
        let rtptime = play.start_rtp.wrapping_add(s.ts_offset);
        Response::new(200)
            .header("Session", Self::session_header(s))
            .header("Range", "npt=0.000-")
            .header(
                "RTP-Info",
                format!(
                    "url={track_url};seq={};rtptime={rtptime}",
                    s.packetizer.next_seq()
                ),
            )
    }

    pub(super) fn pause(&mut self, req: &Request) -> Response {
        let s = match self.session_for(req) {
            Ok(s) => s,
            Err(r) => return r,
        };
        s.play = None;
        Response::new(200).header("Session", Self::session_header(s))
    }

    pub(super) fn teardown(&mut self, req: &Request) -> Response {
        if let Err(r) = self.session_for(req) {
            return r;
        }
        if let Some(s) = self.session.take() {
            tracing::debug!(peer = %self.peer, session = %s.id, "demo camera: session torn down");
        }
        Response::new(200)
    }

    pub(super) fn parameter(&mut self, req: &Request) -> Response {
        let mut resp = Response::new(200);
        if req.session_id().is_some() {
            match self.session_for(req) {
                Ok(s) => resp = resp.header("Session", Self::session_header(s)),
                Err(r) => return r,
            }
        }
        if !req.body.iter().all(u8::is_ascii_whitespace) {
            // No parameters exist; an empty request is a keepalive.
            resp.status = 451;
        }
        resp
    }

    /// Sends one access unit (and, now and then, an RTCP sender report) to a playing client.
    pub(super) async fn send_frame(
        &mut self,
        frame: &EncodedFrame,
        wr: &mut OwnedWriteHalf,
    ) -> Result<(), String> {
        let Some(s) = self.session.as_mut() else {
            return Ok(());
        };
        let Some(play) = s.play.as_mut() else {
            return Ok(());
        };
        if play.waiting_keyframe {
            let before_play = (frame.rtp_time.wrapping_sub(play.start_rtp) as i32) < 0;
            if !frame.keyframe || before_play {
                return Ok(());
            }
            play.waiting_keyframe = false;
        }
        let (hang_up, drop_one_in, corrupt_one_in, audio, mid_frame) = self.cfg.faults.with(|f| {
            (
                f.hang_up_after_frames,
                f.drop_one_packet_in,
                f.corrupt_one_frame_in,
                f.audio,
                f.start_mid_frame,
            )
        });
        // Until the first FU-A start of the first frame has gone unsent.
        let mut skipping = mid_frame && play.frames_sent == 0;
        if hang_up.is_some_and(|n| play.frames_sent >= n) {
            return Err("fault: hung up mid-stream".into());
        }
        play.frames_sent = play.frames_sent.saturating_add(1);
        s.frames_seen += 1;
        let one_in = |n: Option<u32>, count: u64| {
            n.is_some_and(|n| n > 0 && count.is_multiple_of(u64::from(n)))
        };
        let corrupted;
        let nals: &[Bytes] = if one_in(corrupt_one_in, s.frames_seen) {
            corrupted = faults::corrupt_slices(&frame.nals, frame.rtp_time);
            &corrupted
        } else {
            &frame.nals
        };
        let size: usize = nals.iter().map(|n| n.len() + 32).sum();
        let mut out = BytesMut::with_capacity(size + 64);
        let Some(channel) = s.channel else {
            // Only audio was set up.
            return self.send_audio(frame, audio, wr).await;
        };
        let mut packets_seen = s.packets_seen;
        s.packetizer
            .packetize(nals, frame.rtp_time.wrapping_add(s.ts_offset), |pkt| {
                packets_seen += 1;
                if skipping {
                    // FU-A (type 28) with its start bit: the last packet not sent.
                    let fu_a_start = pkt.len() > 13 && pkt[12] & 0x1f == 28 && pkt[13] & 0x80 != 0;
                    skipping = !fu_a_start;
                    return;
                }
                if one_in(drop_one_in, packets_seen) {
                    return;
                }
                out.put_u8(b'$');
                out.put_u8(channel);
                out.put_u16(pkt.len() as u16);
                out.put_slice(pkt);
            });
        s.packets_seen = packets_seen;
        let now = Instant::now();
        if now >= play.next_sender_report {
            play.next_sender_report = now + SR_INTERVAL;
            let rtp_now = self.cfg.encoder.rtp_now().wrapping_add(s.ts_offset);
            let sr = s
                .packetizer
                .sender_report(ntp_time(SystemTime::now()), rtp_now, CNAME);
            out.put_u8(b'$');
            out.put_u8(channel + 1);
            out.put_u16(sr.len() as u16);
            out.put_slice(&sr);
        }
        write_all(wr, &out).await?;
        self.send_audio(frame, audio, wr).await
    }

    /// With the `AnnounceAndSend` audio fault: a video frame's worth of PCMU silence, on the
    /// audio channel if set up, else on the two channels after the video's.
    pub(super) async fn send_audio(
        &mut self,
        frame: &EncodedFrame,
        audio: Audio,
        wr: &mut OwnedWriteHalf,
    ) -> Result<(), String> {
        let Some(s) = self.session.as_mut() else {
            return Ok(());
        };
        if audio != Audio::AnnounceAndSend {
            return Ok(());
        }
        let channel = match (s.audio_channel, s.channel) {
            (Some(a), _) => a,
            (None, Some(v)) => match v.checked_add(2) {
                Some(c) if c < u8::MAX => c,
                _ => return Ok(()),
            },
            (None, None) => return Ok(()),
        };
        // 8 kHz samples per video frame, one byte each (0xFF is µ-law silence), kept under
        // the RTP payload limit.
        let samples = (8000 / self.cfg.fps.max(1)).min(1000) as usize;
        let payload = vec![0xFFu8; samples];
        let ts = (u64::from(frame.rtp_time) * 8 / 90) as u32;
        let mut out = BytesMut::with_capacity(samples + 32);
        s.audio_packetizer
            .packetize(&[payload], ts.wrapping_add(s.ts_offset), |pkt| {
                out.put_u8(b'$');
                out.put_u8(channel);
                out.put_u16(pkt.len() as u16);
                out.put_slice(pkt);
            });
        write_all(wr, &out).await
    }
}

/// Constant-time comparison (credentials).
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
