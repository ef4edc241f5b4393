//! [`GstServer`]: runs `gst/rtsp_server.py` (gst-rtsp-server) as a child process.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The system Python. PyGObject (`gi`) is a Debian package and only importable from the
/// distribution's interpreter, not from pyenv/venv Pythons that may come first on `PATH`.
const PYTHON: &str = "/usr/bin/python3";

/// Debian packages the server needs (python3-gi and the GStreamer RTSP server plus the
/// plugins its pipelines use).
pub const APT_PACKAGES: &str = "python3 python3-gi gir1.2-gst-rtsp-server-1.0 \
     gstreamer1.0-rtsp gstreamer1.0-tools gstreamer1.0-plugins-base \
     gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad \
     gstreamer1.0-libav";

/// How long the server may take to print `READY`. The first GStreamer start on a fresh
/// machine scans every plugin to build its registry, which takes seconds on a busy
/// 2-core CI runner.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a dropped server gets to exit on its own (stdin closed) before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(3);

/// Keep at most this much of the server's stderr for error messages.
const STDERR_KEEP: usize = 16 * 1024;

fn install_hint() -> String {
    format!(
        "install the system packages with `sudo apt-get install -y {APT_PACKAGES}` \
         (or run scripts/test.sh as root, which installs them)"
    )
}

/// Credentials for [`GstServer::start_with`].
#[derive(Clone, Debug)]
pub struct GstServerOptions {
    /// User accepted on the `/auth/...` mount points.
    pub user: String,
    /// That user's password.
    pub password: String,
    /// Also serve `/shared-file` (an mp4 played by one pipeline for all clients, seeked back
    /// to its start by every PLAY); the server encodes the clip when it starts.
    pub shared_file: bool,
}

impl Default for GstServerOptions {
    /// `camkit` / `s3cr@t:pass/word`: the password holds `@`, `:` and `/` on purpose, the
    /// characters that break naive URL and header handling.
    fn default() -> Self {
        GstServerOptions {
            user: "camkit".to_owned(),
            password: "s3cr@t:pass/word".to_owned(),
            shared_file: false,
        }
    }
}

/// A running gst-rtsp-server on 127.0.0.1 (see `gst/rtsp_server.py` for the mount points:
/// `/h264-720`, `/h264-1080`, `/baseline`, `/main`, `/high`, `/bframes`, `/h265`,
/// `/h265-720`, `/h265-1080`, `/h265-720-bframes`, `/h265-1080-bframes`, `/h265-main10`,
/// `/sub-4x3` (640×480),
/// `/auth/h264-1080`, `/auth/h264-360`, `/av`, `/mjpeg`, `/udp-only`; `/shared-file` on request).
///
/// Dropping it stops the server. The server also exits by itself when this process dies,
/// because it watches its stdin, which is a pipe from us; so a `static` instance that is
/// never dropped does not outlive the test binary either.
#[derive(Debug)]
pub struct GstServer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    opts: GstServerOptions,
}

impl GstServer {
    /// Starts a server with the default credentials ([`GstServerOptions::default`]).
    ///
    /// Fails, with a message naming the `apt-get` command to fix it, when
    /// `/usr/bin/python3`, PyGObject or the GStreamer packages are missing.
    pub fn start() -> io::Result<GstServer> {
        Self::start_with(GstServerOptions::default())
    }

    /// Starts a server whose `/auth/...` mount points accept `opts.user`/`opts.password`.
    pub fn start_with(opts: GstServerOptions) -> io::Result<GstServer> {
        let script = script_path();
        if !Path::new(PYTHON).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{PYTHON} not found; {}", install_hint()),
            ));
        }
        if !script.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("RTSP server script {} is missing", script.display()),
            ));
        }

        let mut cmd = Command::new(PYTHON);
        cmd.arg(&script).args([
            "--port",
            "0",
            "--user",
            &opts.user,
            "--password",
            &opts.password,
        ]);
        if opts.shared_file {
            cmd.arg("--shared-file");
        }
        let (child, stdin, port) = spawn_until_ready(cmd, READY_TIMEOUT)?;
        Ok(GstServer {
            child,
            stdin,
            port,
            opts,
        })
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtsp://127.0.0.1:PORT/path`, without credentials. `path` should start with `/`;
    /// one is added if it does not.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("rtsp://127.0.0.1:{}{slash}{path}", self.port)
    }

    /// [`url`](Self::url) with the user and password embedded, percent-encoded (so
    /// `s3cr@t:pass/word` becomes `s3cr%40t%3Apass%2Fword`).
    pub fn url_with_credentials(&self, path: &str) -> String {
        let plain = self.url(path);
        let rest = plain.trim_start_matches("rtsp://");
        format!(
            "rtsp://{}:{}@{rest}",
            percent_encode(&self.opts.user),
            percent_encode(&self.opts.password)
        )
    }

    /// The user accepted on `/auth/...`.
    pub fn user(&self) -> &str {
        &self.opts.user
    }

    /// The password accepted on `/auth/...`.
    pub fn password(&self) -> &str {
        &self.opts.password
    }
}

impl Drop for GstServer {
    fn drop(&mut self) {
        // Closing stdin asks the server to shut down cleanly (it tears down its pipelines);
        // kill it only if it does not manage within the grace period.
        drop(self.stdin.take());
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes everything but RFC 3986 "unreserved" characters. The `url` crate is not
/// used for this because it leaves `%` alone in user info (it assumes the input may be
/// encoded already), which would turn a literal `%` in a password into garbage.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Spawns `cmd` with piped stdio and waits for `READY <port>` on its stdout.
fn spawn_until_ready(
    mut cmd: Command,
    timeout: Duration,
) -> io::Result<(Child, Option<ChildStdin>, u16)> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {program}: {e}")))?;

    let stderr_log = Arc::new(Mutex::new(String::new()));
    let stderr_done = child
        .stderr
        .take()
        .map(|err| forward_stderr(err, Arc::clone(&stderr_log)));
    let stdin = child.stdin.take();
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other("child stdout was not captured"));
    };
    // On error wait_ready has already killed and reaped the child.
    let port = wait_ready(stdout, &mut child, timeout, stderr_done, &stderr_log)?;
    Ok((child, stdin, port))
}

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("gst")
        .join("rtsp_server.py")
}

/// Copies the server's stderr to ours (GStreamer warnings are worth seeing when a test
/// fails) and keeps the start of it for error messages.
///
/// The returned receiver disconnects when the thread has finished (stderr hit EOF).
fn forward_stderr(err: impl Read + Send + 'static, log: Arc<Mutex<String>>) -> mpsc::Receiver<()> {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _done = done_tx;
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            eprintln!("[gst rtsp server] {line}");
            if let Ok(mut log) = log.lock() {
                if log.len() < STDERR_KEEP {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        }
    });
    done_rx
}

/// Reads the child's stdout until `READY <port>`; a thread does the blocking reads so the
/// wait can time out. The thread keeps draining stdout afterwards so the server can never
/// block on a full pipe.
fn wait_ready(
    stdout: impl Read + Send + 'static,
    child: &mut Child,
    timeout: Duration,
    stderr_done: Option<mpsc::Receiver<()>>,
    stderr_log: &Mutex<String>,
) -> io::Result<u16> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                sent = tx.send(line).is_ok();
            }
        }
    });

    let failure = |what: String, child: &mut Child| {
        let _ = child.kill();
        let status = child.wait().ok();
        // The child is gone, so its stderr pipe is at EOF: waiting for the reader collects
        // its last words (usually the reason it failed). Bounded, because a grandchild
        // could still hold the pipe open.
        if let Some(done) = stderr_done {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
        let stderr = stderr_log.lock().map(|s| s.clone()).unwrap_or_default();
        let status = status.map(|s| format!(" ({s})")).unwrap_or_default();
        io::Error::other(format!(
            "GStreamer RTSP test server ({}) {what}{status}.\n\
             --- its stderr ---\n{stderr}------------------\n\
             If GStreamer or PyGObject is missing, {}",
            script_path().display(),
            install_hint()
        ))
    };

    match rx.recv_timeout(timeout) {
        Ok(line) => match line.strip_prefix("READY ").map(|p| p.trim().parse::<u16>()) {
            Some(Ok(port)) if port != 0 => Ok(port),
            _ => Err(failure(
                format!("printed {line:?} instead of `READY <port>`"),
                child,
            )),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => Err(failure(
            format!("did not print READY within {timeout:?}"),
            child,
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(failure("exited before it was ready".to_owned(), child))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn ready_line_gives_the_port_and_stdin_eof_stops_the_child() {
        // Like the real server: announce, then live until stdin closes.
        let (mut child, stdin, port) = spawn_until_ready(
            sh("echo READY 4242; cat >/dev/null"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(port, 4242);
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }

    #[test]
    fn early_exit_reports_stderr_and_the_apt_command() {
        let err = spawn_until_ready(
            sh("echo 'No module named gi' >&2; exit 2"),
            Duration::from_secs(10),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("exited before it was ready"), "{err}");
        assert!(err.contains("No module named gi"), "{err}");
        assert!(err.contains("sudo apt-get install -y python3"), "{err}");
        assert!(err.contains("gir1.2-gst-rtsp-server-1.0"), "{err}");
    }

    #[test]
    fn garbage_and_silence_are_errors() {
        let err = spawn_until_ready(sh("echo hello; exec sleep 5"), Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"hello\" instead of `READY <port>`"), "{err}");
        let err = spawn_until_ready(sh("exec sleep 5"), Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not print READY within"), "{err}");
    }

    #[test]
    fn credentials_are_percent_encoded() {
        assert_eq!(percent_encode("s3cr@t:pass/word"), "s3cr%40t%3Apass%2Fword");
        assert_eq!(percent_encode("a-b_c.d~e %é"), "a-b_c.d~e%20%25%C3%A9");
    }
}
