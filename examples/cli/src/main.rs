//! `camkit`: probe a camera, take a snapshot, run the demo camera.
//!
//! Credentials come from the URL (`rtsp://user:pass@host/...`), from `--user` /
//! `--password`, or from `CAMKIT_USERNAME` / `CAMKIT_PASSWORD`. The password is never
//! printed. Failures exit non-zero with one line: `camkit: CODE: message`.
//!
//! `--sub-stream` opens the camera's sub-stream beside it (see the README's Sub-streams):
//! `probe` reports both streams, `snapshot` takes its picture from the one `--stream`
//! picks (`auto`: the sub-stream when `--max-width` fits it).

use std::process::ExitCode;
use std::time::Duration;

use camkit::{
    CameraConfig, CameraManager, DecodePolicy, Error, ErrorKind, SnapshotOptions, StreamChoice,
};

const USAGE: &str = "\
camkit — IP cameras to frames

USAGE:
  camkit probe URL [OPTIONS] [--json]
      Connect, watch the stream for a moment, print codec, profile, resolution, fps, transport.
  camkit snapshot URL -o FILE [--max-width N] [--quality Q] [--stream S] [OPTIONS]
      Write the camera's current picture as a JPEG file. --stream auto | main | sub
      (default auto: the sub-stream when --max-width is at most its width).
  camkit demo-camera [--port 8554] [--bind 127.0.0.1] [--width 1280] [--height 720] [--fps 15]
      Serve the built-in synthetic camera over RTSP until Ctrl-C.

OPTIONS:
  --user NAME          username (or CAMKIT_USERNAME)
  --password PASS      password (or CAMKIT_PASSWORD; or in the URL)
  --transport T        tcp | udp | auto (default auto)
  --decoder D          auto | openh264 | libavcodec (default auto: libavcodec when
                       FFmpeg's library is installed, else openh264; H.265 needs
                       libavcodec)
  --timeout-ms N       limit for each RTSP step (default 5000)
  --sub-stream PATH    the camera's sub-stream: a path on the same host and port
                       (/Streaming/Channels/102) or an rtsp:// URL
  -h, --help           this text
";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "camkit=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("camkit: INTERNAL: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camkit: {}: {e}", e.kind().code());
            ExitCode::from(exit_code(e.kind()))
        }
    }
}

/// Exit codes by kind, so scripts can tell a wrong password from a dead camera.
fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput => 2,
        ErrorKind::Unauthorized => 3,
        ErrorKind::Unreachable => 4,
        ErrorKind::Timeout => 5,
        ErrorKind::UnsupportedCodec => 6,
        _ => 1,
    }
}

/// Parsed command-line flags.
#[derive(Default)]
struct Flags {
    positional: Vec<String>,
    output: Option<String>,
    user: Option<String>,
    password: Option<String>,
    transport: Option<String>,
    decoder: Option<String>,
    timeout_ms: Option<u64>,
    max_width: Option<u32>,
    quality: Option<u8>,
    sub_stream: Option<String>,
    stream: Option<String>,
    port: Option<u16>,
    bind: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<u32>,
    json: bool,
    help: bool,
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> camkit::Result<T> {
    let v = v.ok_or_else(|| Error::invalid(flag, "needs a value"))?;
    v.parse()
        .map_err(|_| Error::invalid(flag, format!("{v:?} is not a valid number")))
}

fn value(flag: &str, v: Option<String>) -> camkit::Result<String> {
    v.ok_or_else(|| Error::invalid(flag, "needs a value"))
}

fn parse_flags(args: Vec<String>) -> camkit::Result<Flags> {
    let mut f = Flags::default();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "--output" => f.output = it.next(),
            "--user" | "--username" => f.user = it.next(),
            "--password" => f.password = it.next(),
            "--transport" => f.transport = it.next(),
            "--decoder" => f.decoder = it.next(),
            "--timeout-ms" => f.timeout_ms = Some(parse_num("--timeout-ms", it.next())?),
            "--max-width" => f.max_width = Some(parse_num("--max-width", it.next())?),
            "--quality" => f.quality = Some(parse_num("--quality", it.next())?),
            "--sub-stream" => f.sub_stream = Some(value("--sub-stream", it.next())?),
            "--stream" => f.stream = Some(value("--stream", it.next())?),
            "--port" => f.port = Some(parse_num("--port", it.next())?),
            "--bind" => f.bind = it.next(),
            "--width" => f.width = Some(parse_num("--width", it.next())?),
            "--height" => f.height = Some(parse_num("--height", it.next())?),
            "--fps" => f.fps = Some(parse_num("--fps", it.next())?),
            "--json" => f.json = true,
            "-h" | "--help" => f.help = true,
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(Error::invalid(s, "unknown option (see camkit --help)"))
            }
            _ => f.positional.push(a),
        }
    }
    Ok(f)
}

fn camera_config(f: &Flags) -> camkit::Result<CameraConfig> {
    let url = f
        .positional
        .get(1)
        .ok_or_else(|| Error::invalid("URL", "missing (e.g. rtsp://192.168.1.20:554/stream1)"))?;
    let mut cfg = CameraConfig::from_url("cli", url.clone());
    cfg.username = f
        .user
        .clone()
        .or_else(|| std::env::var("CAMKIT_USERNAME").ok());
    cfg.password = f
        .password
        .clone()
        .or_else(|| std::env::var("CAMKIT_PASSWORD").ok());
    if let Some(t) = &f.transport {
        cfg.transport = t.parse()?;
    }
    if let Some(d) = &f.decoder {
        cfg.decoder = d.parse()?;
    }
    if let Some(ms) = f.timeout_ms {
        cfg.rtsp_timeout = Duration::from_millis(ms);
    }
    cfg.sub_stream = f.sub_stream.clone();
    cfg.decode = DecodePolicy::Continuous;
    Ok(cfg)
}

async fn run(args: Vec<String>) -> camkit::Result<()> {
    let f = parse_flags(args)?;
    let cmd = f.positional.first().map(String::as_str);
    if f.help || cmd.is_none() {
        print!("{USAGE}");
        return if cmd.is_none() && !f.help {
            Err(Error::invalid(
                "command",
                "missing: probe, snapshot or demo-camera",
            ))
        } else {
            Ok(())
        };
    }
    match cmd {
        Some("probe") => probe(&f).await,
        Some("snapshot") => snapshot(&f).await,
        Some("demo-camera") => demo_camera(&f).await,
        Some(other) => Err(Error::invalid(
            "command",
            format!("{other:?} is not one of probe, snapshot, demo-camera"),
        )),
        None => unreachable!("handled above"),
    }
}

async fn probe(f: &Flags) -> camkit::Result<()> {
    let cfg = camera_config(f)?;
    let cams = CameraManager::new();
    cams.connect(cfg).await?;
    // Watch for a moment so fps and bitrate are measured, not guessed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = cams.status("cli")?;
    if f.json {
        let j = serde_json::to_string_pretty(&s)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        println!("{j}");
    } else {
        println!("url:        {}", s.url);
        println!("codec:      {}", s.codec.as_deref().unwrap_or("?"));
        println!("profile:    {}", s.profile.as_deref().unwrap_or("-"));
        println!(
            "resolution: {}x{}",
            s.width.unwrap_or(0),
            s.height.unwrap_or(0)
        );
        println!("fps:        {:.1}", s.fps);
        println!("bitrate:    {:.0} kbit/s", s.bitrate_bps / 1000.0);
        println!("transport:  {}", s.transport);
        println!("decoder:    {}", s.decoder);
        if let Some(sub) = &s.sub_stream {
            println!("sub-stream: {} ({})", sub.url, sub.state.as_str());
            println!(
                "            {}x{}, {:.1} fps{}",
                sub.width.unwrap_or(0),
                sub.height.unwrap_or(0),
                sub.fps,
                sub.off
                    .as_deref()
                    .map(|why| format!("; off: {why}"))
                    .unwrap_or_default()
            );
        }
    }
    cams.disconnect("cli").await
}

async fn snapshot(f: &Flags) -> camkit::Result<()> {
    let out = f
        .output
        .clone()
        .ok_or_else(|| Error::invalid("-o", "missing: where to write the JPEG"))?;
    let cfg = camera_config(f)?;
    let stream = match &f.stream {
        Some(s) => s.parse::<StreamChoice>().map_err(|_| {
            Error::invalid("--stream", format!("{s:?} is not one of auto, main, sub"))
        })?,
        None => StreamChoice::Auto,
    };
    let opts = SnapshotOptions {
        max_width: f.max_width,
        quality: f.quality,
        stream,
    };
    opts.validate()?;
    let cams = CameraManager::new();
    cams.connect(cfg).await?;
    let frame = cams.snapshot("cli", opts).await?;
    std::fs::write(&out, &frame.jpeg)
        .map_err(|e| Error::invalid("-o", format!("cannot write {out}: {e}")))?;
    println!(
        "wrote {out}: {}x{} JPEG, {} bytes",
        frame.width,
        frame.height,
        frame.jpeg.len()
    );
    cams.disconnect("cli").await
}

#[cfg(feature = "demo-camera")]
async fn demo_camera(f: &Flags) -> camkit::Result<()> {
    use camkit_demo_camera::{DemoCamera, DemoCameraOptions};
    let mut opts = DemoCameraOptions::default();
    if let Some(p) = f.port {
        opts.port = p;
    }
    if let Some(b) = &f.bind {
        opts.bind = b
            .parse()
            .map_err(|_| Error::invalid("--bind", format!("{b:?} is not an IP address")))?;
    }
    if let Some(w) = f.width {
        opts.width = w;
    }
    if let Some(h) = f.height {
        opts.height = h;
    }
    if let Some(fps) = f.fps {
        opts.fps = fps;
        opts.gop_frames = fps * 2;
    }
    let cam = DemoCamera::start(opts).await?;
    // A closed stdout (a parent that read the URL and went away) must not end the camera:
    // no println!, which panics on EPIPE.
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "demo camera at {}", cam.url());
    let _ = writeln!(out, "press Ctrl-C to stop");
    let _ = out.flush();
    let _ = tokio::signal::ctrl_c().await;
    cam.stop().await;
    Ok(())
}

#[cfg(not(feature = "demo-camera"))]
async fn demo_camera(_: &Flags) -> camkit::Result<()> {
    Err(Error::invalid(
        "command",
        "this build has no demo camera (the CLI built without its demo-camera feature)",
    ))
}
