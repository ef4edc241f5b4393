//! Servers that misbehave: one that accepts and never answers, and a port nobody listens on.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A TCP server on 127.0.0.1 that accepts connections and never sends a byte, holding them
/// open until it is dropped: what a hung camera or a black-holing firewall looks like to an
/// RTSP client. Plain `std` threads, so it works from any test, async or not.
#[derive(Debug)]
pub struct SilentServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    // Held so the connections stay open; dropped (closed) with the server.
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    /// Binds 127.0.0.1 on a free port and starts accepting.
    ///
    /// # Panics
    ///
    /// If no local port can be bound or no thread spawned; see [`try_start`](Self::try_start).
    pub fn start() -> SilentServer {
        Self::try_start().unwrap_or_else(|e| panic!("cannot start the silent server: {e}"))
    }

    /// [`start`](Self::start), returning errors instead of panicking.
    pub fn try_start() -> io::Result<SilentServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, accepted, conns) = (stop.clone(), accepted.clone(), conns.clone());
            std::thread::Builder::new()
                .name("silent-server".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        // Errors such as EMFILE are transient from the client's point of
                        // view: keep serving (silently) instead of closing the port.
                        let Ok(conn) = conn else { continue };
                        accepted.fetch_add(1, Ordering::SeqCst);
                        if let Ok(mut c) = conns.lock() {
                            c.push(conn);
                        }
                    }
                })?
        };
        Ok(SilentServer {
            addr,
            stop,
            accepted,
            conns,
            thread: Some(thread),
        })
    }

    /// `rtsp://127.0.0.1:PORT/silent`.
    pub fn url(&self) -> String {
        format!("rtsp://{}/silent", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections have been accepted so far (lets a test prove the client did
    /// connect, and did not fail for some other reason).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // `accept` has no timeout; a connection of our own wakes the thread so it sees
        // `stop`. If the connect fails the thread is stuck in accept; leave it rather than
        // hang the test in join.
        let woke = TcpStream::connect(self.addr).is_ok();
        if let Some(t) = self.thread.take() {
            if woke {
                let _ = t.join();
            }
        }
        if let Ok(mut c) = self.conns.lock() {
            c.clear();
        }
    }
}

/// `rtsp://127.0.0.1:PORT/x` for a port nobody listens on, so connecting is refused at
/// once. The port was free a moment ago (bound and released); another process could take
/// it in between, which is unlikely enough for tests.
///
/// # Panics
///
/// If no local port can be bound at all.
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free local port");
    let port = listener
        .local_addr()
        .expect("local address of a bound listener")
        .port();
    drop(listener);
    format!("rtsp://127.0.0.1:{port}/x")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    #[test]
    fn accepts_and_stays_silent_until_dropped() {
        let server = SilentServer::start();
        let mut conn = TcpStream::connect(server.addr()).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 16];
        let err = conn.read(&mut buf).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "expected a read timeout, got {err:?}"
        );
        assert_eq!(server.accepted(), 1);

        drop(server);
        // Dropping the server closes the connection: EOF or reset, promptly.
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        match conn.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            other => panic!("expected the connection to close, got {other:?}"),
        }
    }

    #[test]
    fn closed_port_refuses() {
        let url = closed_port_url();
        let port: u16 = url
            .trim_start_matches("rtsp://127.0.0.1:")
            .trim_end_matches("/x")
            .parse()
            .unwrap();
        let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }
}
