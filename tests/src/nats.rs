//! A real `nats-server` (Debian package) with JetStream, on loopback, for cluster-mode
//! tests and benchmarks: its own free port, monitoring port and store directory, killed
//! and removed on drop. [`NatsServer::cluster`] starts several routed into one JetStream
//! cluster.

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
        let (port, monitor) = (free_port()?, free_port()?);
        let server = Self::spawn(port, monitor, &[])?;
        server.wait_accepting()?;
        Ok(server)
    }

    /// Starts a JetStream cluster of `n` servers (`n1` … `n<n>`, cluster `camkit-test`),
    /// each routed to all the others, and waits until every one accepts connections and
    /// reports a JetStream meta leader (up to 20 s): only then can replicated streams be
    /// made. Dropping a server kills it, the others keep the cluster.
    pub fn cluster(n: usize) -> io::Result<Vec<NatsServer>> {
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| Ok((free_port()?, free_port()?, free_port()?)))
            .collect::<io::Result<_>>()?;
        let mut servers = Vec::with_capacity(n);
        for (i, &(port, monitor, route)) in ports.iter().enumerate() {
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, p)| format!("nats://127.0.0.1:{}", p.2))
                .collect();
            let args = [
                "--cluster".to_owned(),
                format!("nats://127.0.0.1:{route}"),
                "--routes".to_owned(),
                routes.join(","),
                "--cluster_name".to_owned(),
                "camkit-test".to_owned(),
                "-n".to_owned(),
                format!("n{}", i + 1),
            ];
            servers.push(Self::spawn(port, monitor, &args)?);
        }
        for s in &servers {
            s.wait_accepting()?;
        }
        let t0 = Instant::now();
        loop {
            let leaders = servers
                .iter()
                .filter(|s| {
                    s.monitor("/jsz").is_ok_and(|j| {
                        j["meta_cluster"]["leader"]
                            .as_str()
                            .is_some_and(|l| !l.is_empty())
                    })
                })
                .count();
            if leaders == n {
                return Ok(servers);
            }
            if t0.elapsed() > Duration::from_secs(20) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the {n} nats-servers formed no JetStream cluster within 20 s \
                         ({leaders} of them know a meta leader)"
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn spawn(port: u16, monitor: u16, extra: &[String]) -> io::Result<NatsServer> {
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
        let dir = std::env::temp_dir().join(format!("camkit-nats-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-m"])
            .arg(monitor.to_string())
            .args(["-js", "-sd"])
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(NatsServer {
            child,
            port,
            monitor,
            dir,
        })
    }

    fn wait_accepting(&self) -> io::Result<()> {
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nats-server did not start within 10 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's `/varz` (counters `in_msgs`, `out_msgs`, `in_bytes`, `out_bytes` …).
    pub fn varz(&self) -> io::Result<serde_json::Value> {
        self.monitor("/varz")
    }

    /// A page of the server's monitoring port (`/varz`, `/jsz` …) as JSON. A plain
    /// HTTP/1.0 GET on loopback: one request does not warrant an HTTP client.
    pub fn monitor(&self, path: &str) -> io::Result<serde_json::Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.monitor))?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
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
