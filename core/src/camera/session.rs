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
use crate::config::{CameraConfig, Source, Transport};
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
    pub info: StreamInfo,
}

/// What an open stream yields next.
pub(crate) enum StreamItem {
    /// A compressed frame of the video track.
    Video(VideoFrame),
    /// Something else arrived (another track, RTCP): the session is alive.
    Other,
}

/// One compressed frame of the video track.
pub(crate) struct VideoFrame {
    pub data: Bytes,
    pub keyframe: bool,
    /// RTP packets lost just before this frame.
    pub loss: u64,
    /// The stream's parameters changed with this frame (new SPS: size, profile, range).
    pub new_params: Option<StreamInfo>,
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
    pub info: StreamInfo,
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
}

impl Opener for RtspOpener {
    fn open(&self) -> BoxFuture<'_, Result<Opened>> {
        Box::pin(async move {
            let o = open(&self.source, &self.config, &self.group).await?;
            Ok(Opened {
                stream: Box::new(RtspStream {
                    demuxed: o.demuxed,
                    video: o.video_index,
                    codec: o.codec,
                    endpoint: endpoint(self.source.url()),
                }),
                codec: o.codec,
                info: o.info,
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
                Err(e) => return Some(Err(classify(&e, Step::Stream, &self.endpoint, true))),
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
            Some(Ok(StreamItem::Video(VideoFrame {
                rtp_timestamp: ts.timestamp(),
                clock_rate: ts.clock_rate().get(),
                keyframe: f.is_random_access_point(),
                loss: f.loss() as u64,
                new_params,
                data: Bytes::from(f.into_data()),
            })))
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
) -> Result<OpenStream> {
    match cfg.transport {
        Transport::Tcp => open_with(source, cfg, group, Transport::Tcp).await,
        Transport::Udp => open_with(source, cfg, group, Transport::Udp).await,
        Transport::Auto => match open_with(source, cfg, group, Transport::Tcp).await {
            Err(e) if e.status() == Some(TRANSPORT_REFUSED) => {
                tracing::info!(url = %source.url(), "camera refused RTP over TCP (461); trying UDP");
                open_with(source, cfg, group, Transport::Udp).await
            }
            r => r,
        },
    }
}

async fn open_with(
    source: &Source,
    cfg: &CameraConfig,
    group: &Arc<SessionGroup>,
    transport: Transport,
) -> Result<OpenStream> {
    let url = source.url();
    let endpoint = endpoint(url);
    let has_creds = source.credentials().is_some();
    let options = SessionOptions::default()
        .creds(source.credentials().cloned())
        .user_agent(format!("camkit/{}", env!("CARGO_PKG_VERSION")))
        .session_group(group.clone());
    let mut session = step(
        Step::Describe,
        cfg.rtsp_timeout,
        &endpoint,
        has_creds,
        Session::describe(url.clone(), options),
    )
    .await?;

    let (video_index, codec) = pick_video(session.streams(), &endpoint)?;
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
        session.play(PlayOptions::default().initial_seq(InitialSequenceNumberPolicy::Ignore)),
    )
    .await?;
    let demuxed = playing
        .demuxed()
        .map_err(|e| classify(&e, Step::Play, &endpoint, has_creds))?;
    let mut info = stream_info(&demuxed.streams()[video_index], codec);
    info.transport = Some(transport);
    Ok(OpenStream {
        demuxed,
        video_index,
        codec,
        info,
    })
}

/// Picks the first video track camkit can decode, or says why none fits.
fn pick_video(streams: &[retina::client::Stream], endpoint: &str) -> Result<(usize, VideoCodec)> {
    let mut unsupported = None;
    for (i, s) in streams.iter().enumerate() {
        let media = s.media();
        if media != "video" && media != "image" {
            continue;
        }
        match s.encoding_name() {
            "h264" => return Ok((i, VideoCodec::H264)),
            "jpeg" => return Ok((i, VideoCodec::Jpeg)),
            other => unsupported.get_or_insert_with(|| other.to_owned()),
        };
    }
    match unsupported {
        Some(name) => {
            let (label, fix) = match name.as_str() {
                "h265" => (
                    "H.265 (HEVC)".to_owned(),
                    "switch this camera stream to H.264 in the camera's video/encoding settings (or use its H.264 sub-stream)",
                ),
                other => (
                    other.to_uppercase(),
                    "switch this camera stream to H.264 or MJPEG in the camera's settings",
                ),
            };
            Err(Error::new(
                ErrorKind::UnsupportedCodec,
                format!("{endpoint} sends {label} video, which camkit does not decode: {fix}"),
            ))
        }
        None => Err(Error::new(
            ErrorKind::Protocol,
            format!("{endpoint} describes no video track: check the stream path"),
        )),
    }
}

/// Codec, profile and size as known from the SDP (or the first frame).
pub(crate) fn stream_info(s: &retina::client::Stream, codec: VideoCodec) -> StreamInfo {
    let mut info = StreamInfo {
        codec: Some(
            match codec {
                VideoCodec::H264 => "h264",
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
        if codec == VideoCodec::H264 {
            info.profile = h264_profile_name(v.rfc6381_codec());
            if let retina::codec::VideoParametersCodec::H264 { sps, .. } = v.codec_params() {
                info.full_range = sps_full_range(sps);
            }
        }
    }
    info
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
    let port = url.port().unwrap_or(crate::config::DEFAULT_PORT);
    format!("rtsp://{host}:{port}{}", url.path())
}
