//! A real `nats-server` (Debian package) with JetStream, on loopback, for cluster-mode
//! tests and benchmarks: its own free port, monitoring port and store directory, killed
//! and removed on drop.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server -js` on 127.0.0.1.
pub struct NatsServer {
    child: Child,
    port: u16,
    monitor: u16,
    dir: PathBuf,
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl NatsServer {
    /// Starts one and waits until it accepts connections (up to 10 s). Fails naming the
    /// package when `nats-server` is not installed (in PATH or /usr/sbin).
    pub fn start() -> io::Result<NatsServer> {
        let bin = ["nats-server", "/usr/sbin/nats-server"]
            .into_iter()
            .find(|b| {
                Command::new(b)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok()
            })
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "nats-server is missing: sudo apt-get install -y nats-server",
                )
            })?;
        let (port, monitor) = (free_port()?, free_port()?);
        let dir = std::env::temp_dir().join(format!("camkit-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-m"])
            .arg(monitor.to_string())
            .args(["-js", "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = NatsServer {
            child,
            port,
            monitor,
            dir,
        };
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nats-server did not start within 10 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's `/varz` (counters `in_msgs`, `out_msgs`, `in_bytes`, `out_bytes` …).
    /// A plain HTTP/1.0 GET on loopback: one request does not warrant an HTTP client.
    pub fn varz(&self) -> io::Result<serde_json::Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.monitor))?;
        s.write_all(b"GET /varz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        let json = body
            .find("\r\n\r\n")
            .map(|i| &body[i + 4..])
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP reply"))?;
        serde_json::from_str(json).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
