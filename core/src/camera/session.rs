//! Opening one RTSP stream with retina, each step under a timeout, and turning retina's
//! errors into camkit's kinds with messages that say what to do.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use retina::client::{
    Demuxed, InitialSequenceNumberPolicy, PlayOptions, Session, SessionGroup, SessionOptions,
    SetupOptions, TcpTransportOptions, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};

use super::classify::{classify, Step};
use super::decode_worker::VideoCodec;
use crate::address::Source;
use crate::config::{CameraConfig, Transport};
use crate::decode::{hevc, DecoderBackend};
use crate::error::{Error, ErrorKind, Result};
use crate::status::{h264_profile_name, StreamInfo};
use crate::util::fmt_duration;

/// The RTSP status of a camera that refuses the transport asked for (461 Unsupported
/// Transport), which `auto` transport falls back on.
const TRANSPORT_REFUSED: u16 = 461;

/// A playing stream.
pub(crate) struct OpenStream {
    pub demuxed: Demuxed,
    pub video_index: usize,
    pub codec: VideoCodec,
    pub params: StreamParams,
}

/// What the SDP (or a new SPS) says of a stream: the facts the status reports, and the
/// sample range, which travels with every frame to the decode thread instead.
pub(crate) struct StreamParams {
    pub info: StreamInfo,
    /// Whether the decoded samples use the full 0–255 range (SPS VUI); most cameras send
    /// limited "TV" range, which JPEG needs expanded.
    pub full_range: bool,
}

/// What an open stream yields next.
pub(crate) enum StreamItem {
    /// A compressed frame of the video track.
    Video(VideoFrame),
    /// Something else arrived (another track, RTCP): the session is alive.
    Other,
    /// retina reported an error while reading the stream. The frame being assembled is
    /// lost, but the session may go on: a packet that retina's depacketizer refuses (the
    /// stream was joined in the middle of a fragmented NAL unit, a camera's odd packet)
    /// leaves retina ready for the next one, and errors that end the session make the
    /// stream end or go silent next. retina's error does not say which it was, so the
    /// camera task decides from what follows (see `Lifecycle::stream_once`).
    Damaged(Error),
}

/// One compressed frame of the video track.
pub(crate) struct VideoFrame {
    pub data: Bytes,
    pub keyframe: bool,
    /// RTP packets lost just before this frame.
    pub loss: u64,
    /// The stream's parameters changed with this frame (new SPS: size, profile, range).
    pub new_params: Option<StreamParams>,
    /// Presentation time: the RTP timestamp (retina's, extended past 32 bits) and its
    /// clock rate. Video subscriptions place the frame with it.
    pub rtp_timestamp: i64,
    pub clock_rate: u32,
}

/// A playing stream: items until it fails or the camera ends it.
pub(crate) trait VideoStream: Send {
    /// The next item; `None` once the camera ended the stream. Waits as long as nothing
    /// arrives: the camera task bounds the wait (its watchdog).
    fn next_item(&mut self) -> BoxFuture<'_, Option<Result<StreamItem>>>;
}

/// A stream just opened, with what is known of it.
pub(crate) struct Opened {
    pub stream: Box<dyn VideoStream>,
    pub codec: VideoCodec,
    pub params: StreamParams,
}

/// Opens a camera's stream, once per attempt: the seam between the camera task (reconnect,
/// watchdog, demand, decode) and where video comes from. [`RtspOpener`] is the real one;
/// tests script frames and failures through it without an RTSP server.
pub(crate) trait Opener: Send + Sync {
    /// Opens the stream (for RTSP: DESCRIBE, SETUP, PLAY, each under a timeout).
    fn open(&self) -> BoxFuture<'_, Result<Opened>>;
}

/// The retina session: the stream of a real camera.
pub(crate) struct RtspOpener {
    pub source: Source,
    pub config: CameraConfig,
    pub group: Arc<SessionGroup>,
    /// The camera's decoder: a track it cannot decode is refused at DESCRIBE.
    pub decoder: DecoderBackend,
}

impl Opener for RtspOpener {
    fn open(&self) -> BoxFuture<'_, Result<Opened>> {
        Box::pin(async move {
            let o = open(&self.source, &self.config, &self.group, self.decoder).await?;
            Ok(Opened {
                stream: Box::new(RtspStream {
                    demuxed: o.demuxed,
                    video: o.video_index,
                    codec: o.codec,
                    endpoint: endpoint(self.source.url()),
                }),
                codec: o.codec,
                params: o.params,
            })
        })
    }
}

struct RtspStream {
    demuxed: Demuxed,
    video: usize,
    codec: VideoCodec,
    endpoint: String,
}

impl VideoStream for RtspStream {
    fn next_item(&mut self) -> BoxFuture<'_, Option<Result<StreamItem>>> {
        Box::pin(async move {
            let item = match self.demuxed.next().await? {
                Ok(item) => item,
                Err(e) => {
                    return Some(Ok(StreamItem::Damaged(classify(
                        &e,
                        Step::Stream,
                        &self.endpoint,
                        true,
                    ))))
                }
            };
            let CodecItem::VideoFrame(f) = item else {
                return Some(Ok(StreamItem::Other));
            };
            if f.stream_id() != self.video {
                return Some(Ok(StreamItem::Other));
            }
            let new_params = f
                .has_new_parameters()
                .then(|| stream_info(&self.demuxed.streams()[self.video], self.codec));
            let ts = f.timestamp();
            let mut frame = VideoFrame {
                rtp_timestamp: ts.timestamp(),
                clock_rate: ts.clock_rate().get(),
                keyframe: f.is_random_access_point(),
                loss: f.loss() as u64,
                new_params,
                data: Bytes::from(f.into_data()),
            };
            if self.codec == VideoCodec::H265 && !frame.keyframe {
                h265_open_gop_keyframe(&mut frame, &self.demuxed.streams()[self.video]);
            }
            Some(Ok(StreamItem::Video(frame)))
        })
    }
}

async fn step<T>(
    which: Step,
    limit: Duration,
    endpoint: &str,
    has_creds: bool,
    fut: impl std::future::Future<Output = std::result::Result<T, retina::Error>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e, which, endpoint, has_creds)),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "no answer to {} from {endpoint} within {}: check that the address is a camera's RTSP port and that it is not overloaded",
                which.as_str(),
                fmt_duration(limit)
            ),
        )
        .at_step(which)),
    }
}

/// Opens the stream: DESCRIBE, SETUP of the video track, PLAY.
pub(crate) async fn open(
    source: &Source,
    cfg: &CameraConfig,
    group: &Arc<SessionGroup>,
    decoder: DecoderBackend,
) -> Result<OpenStream> {
    match cfg.transport {
        Transport::Tcp => open_with(source, cfg, group, decoder, Transport::Tcp).await,
        Transport::Udp => open_with(source, cfg, group, decoder, Transport::Udp).await,
        Transport::Auto => match open_with(source, cfg, group, decoder, Transport::Tcp).await {
            Err(e) if e.status() == Some(TRANSPORT_REFUSED) => {
                tracing::info!(url = %source.url(), "camera refused RTP over TCP (461); trying UDP");
                open_with(source, cfg, group, decoder, Transport::Udp).await
            }
            r => r,
        },
    }
}

async fn open_with(
    source: &Source,
    cfg: &CameraConfig,
    group: &Arc<SessionGroup>,
    decoder: DecoderBackend,
    transport: Transport,
) -> Result<OpenStream> {
    let url = source.url();
    let endpoint = endpoint(url);
    let has_creds = source.credentials().is_some();
    let options = SessionOptions::default()
        .creds(source.credentials().cloned())
        .user_agent(format!("camkit/{}", env!("CARGO_PKG_VERSION")))
        .session_group(group.clone())
        .teardown(cfg.teardown.retina())
        .unassigned_channel_data(cfg.unassigned_channel_data.retina());
    let mut session = step(
        Step::Describe,
        cfg.rtsp_timeout,
        &endpoint,
        has_creds,
        Session::describe(url.clone(), options),
    )
    .await?;

    let (video_index, codec) = pick_video(session.streams(), &endpoint, decoder)?;
    let setup = SetupOptions::default()
        .frame_format(FrameFormat::SIMPLE)
        .transport(match transport {
            Transport::Udp => retina::client::Transport::Udp(UdpTransportOptions::default()),
            _ => retina::client::Transport::Tcp(TcpTransportOptions::default()),
        });
    step(
        Step::Setup,
        cfg.rtsp_timeout,
        &endpoint,
        has_creds,
        session.setup(video_index, setup),
    )
    .await?;
    let playing = step(
        Step::Play,
        cfg.rtsp_timeout,
        &endpoint,
        has_creds,
        // The first RTP packet, not RTP-Info's `seq`, starts the sequence: servers whose
        // encoder restarts or whose media seeks for each client (gst-rtsp-server's shared
        // file media) send other numbers first, which retina's default takes for a huge
        // loss and, over TCP, a fatal error. Nothing is lost by ignoring it: loss is still
        // counted from the first packet on.
        session.play(
            PlayOptions::default()
                .initial_seq(InitialSequenceNumberPolicy::Ignore)
                .unknown_rtcp_ssrc(cfg.unknown_rtcp_ssrc.retina()),
        ),
    )
    .await?;
    let demuxed = playing
        .demuxed()
        .map_err(|e| classify(&e, Step::Play, &endpoint, has_creds))?;
    let mut params = stream_info(&demuxed.streams()[video_index], codec);
    params.info.transport = Some(transport);
    Ok(OpenStream {
        demuxed,
        video_index,
        codec,
        params,
    })
}

/// Picks the first video track camkit can decode with `decoder`, or says why none fits
/// (H.265 needs libavcodec: on OpenH264 it is [`ErrorKind::UnsupportedCodec`] saying so).
fn pick_video(
    streams: &[retina::client::Stream],
    endpoint: &str,
    decoder: DecoderBackend,
) -> Result<(usize, VideoCodec)> {
    let mut unsupported = None;
    for (i, s) in streams.iter().enumerate() {
        let media = s.media();
        if media != "video" && media != "image" {
            continue;
        }
        let codec = match s.encoding_name() {
            "h264" => VideoCodec::H264,
            "h265" => VideoCodec::H265,
            "jpeg" => VideoCodec::Jpeg,
            other => {
                unsupported.get_or_insert_with(|| other.to_owned());
                continue;
            }
        };
        match codec.decoded() {
            Some(c) if !decoder.decodes(c) => {
                return Err(decoder.refuses(c, &format!("{endpoint} sends")));
            }
            _ => return Ok((i, codec)),
        }
    }
    match unsupported {
        Some(name) => Err(Error::new(
            ErrorKind::UnsupportedCodec,
            format!(
                "{endpoint} sends {} video, which camkit does not decode: switch this camera \
                 stream to H.264, H.265 or MJPEG in the camera's settings",
                name.to_uppercase()
            ),
        )),
        None => Err(Error::new(
            ErrorKind::Protocol,
            format!("{endpoint} describes no video track: check the stream path"),
        )),
    }
}

/// Codec, profile and size as known from the SDP (or the first frame).
pub(crate) fn stream_info(s: &retina::client::Stream, codec: VideoCodec) -> StreamParams {
    let mut full_range = false;
    let mut info = StreamInfo {
        codec: Some(
            match codec {
                VideoCodec::H264 => "h264",
                VideoCodec::H265 => "h265",
                VideoCodec::Jpeg => "jpeg",
            }
            .to_owned(),
        ),
        ..Default::default()
    };
    if let Some(ParametersRef::Video(v)) = s.parameters() {
        let (w, h) = v.pixel_dimensions();
        info.width = Some(w);
        info.height = Some(h);
        match codec {
            VideoCodec::H264 => {
                info.profile = h264_profile_name(v.rfc6381_codec());
                if let retina::codec::VideoParametersCodec::H264 { sps, .. } = v.codec_params() {
                    full_range = sps_full_range(sps);
                }
            }
            VideoCodec::H265 => info.profile = hevc::profile_name(v.rfc6381_codec()),
            VideoCodec::Jpeg => {}
        }
    }
    StreamParams { info, full_range }
}

/// An H.265 CRA (open-GOP) keyframe, which retina does not mark: marked, and given the
/// stream's parameter sets as retina gives them to IDR keyframes (see [`hevc`]).
fn h265_open_gop_keyframe(frame: &mut VideoFrame, stream: &retina::client::Stream) {
    if !hevc::random_access(&frame.data) {
        return;
    }
    let Some(ParametersRef::Video(v)) = stream.parameters() else {
        // No parameter sets known yet: nothing could decode from here.
        return;
    };
    let retina::codec::VideoParametersCodec::H265 { vps, sps, pps } = v.codec_params() else {
        return;
    };
    if let Some(data) = hevc::with_parameter_sets(&frame.data, vps, sps, pps) {
        frame.data = Bytes::from(data);
    }
    frame.keyframe = true;
}

/// The SPS's `video_full_range_flag`; absent (the common case) means limited range.
fn sps_full_range(sps_nal: &[u8]) -> bool {
    let Ok(rbsp) = h264_reader::rbsp::decode_nal(sps_nal) else {
        return false;
    };
    h264_reader::nal::sps::SeqParameterSet::from_bits(h264_reader::rbsp::BitReader::new(&*rbsp))
        .ok()
        .and_then(|s| s.vui_parameters)
        .and_then(|v| v.video_signal_type)
        .is_some_and(|t| t.video_full_range_flag)
}

/// `host:port` of a URL, for messages.
pub(crate) fn endpoint(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    let port = url.port().unwrap_or(crate::address::DEFAULT_PORT);
    format!("rtsp://{host}:{port}{}", url.path())
}
