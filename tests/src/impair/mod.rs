//! [`ImpairedLink`]: a bad network between an RTSP client and a server, on 127.0.0.1.
//!
//! The usual tool for this is `tc qdisc … netem` on a loopback interface. Not every kernel
//! has `sch_netem` (CI kernels and slim cloud images often lack it, and changing qdiscs
//! needs root), so the link is made here, in user space, as a relay between the client and
//! the server that impairs what it forwards:
//!
//! * **RTP over UDP** (true packet-level impairment): the relay rewrites the ports in the
//!   RTSP `SETUP` exchange (`client_port`, `server_port`) so that RTP and RTCP flow through
//!   its own UDP sockets, and drops, delays or reorders each datagram as netem would.
//! * **RTSP and interleaved RTP over TCP** (a byte stream): the relay delays every byte by
//!   the one-way delay, caps the server→client rate with a token bucket (reading from the
//!   server no faster than the cap, so a server that sends more fills its socket buffer,
//!   as behind a slow link), and turns each lost segment into what TCP makes of it: the
//!   segment and everything after it arrive late by a retransmission timeout (the round
//!   trip plus Linux's 200 ms minimum RTO). Nothing is ever lost or reordered on TCP,
//!   exactly as TCP hides loss from the application.
//! * **Blackout** (100 % loss): UDP datagrams are dropped; TCP bytes are held (nothing
//!   read from either side, nothing delivered) until the link is back, so a server that
//!   keeps sending fills its buffers, and connections survive as TCP ones do.
//!
//! Proxies made for fault injection (Toxiproxy and the like) relay TCP only and know
//! nothing of RTSP, so they can neither impair RTP over UDP nor follow the ports `SETUP`
//! negotiates; hence this small relay.
//!
//! What differs from netem: TCP's congestion control does not see the loss (the relay's
//! kernel sockets run over a perfect loopback), so the throughput drop that loss causes on
//! a real path (≈ MSS / RTT × 1.22 / √p) is not reproduced beyond the rate cap the caller
//! sets; a new connection during a blackout is accepted at once and then hears nothing,
//! where a real one would hang in SYN retries; and the one-way delay applies per relay
//! read, not per packet. Everything stays on 127.0.0.1, in the test's own network
//! namespace, so it needs no privileges.

mod pipe;
mod udp;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The impairment a link applies; [`ImpairedLink::set`] changes it while traffic flows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    /// One-way delay, applied in both directions (the round trip is twice this).
    pub delay: Duration,
    /// Loss probability: per UDP datagram (dropped), per 1448-byte TCP segment (delivered
    /// late by a retransmission timeout, with everything behind it).
    pub loss: f64,
    /// Server→client rate cap in bits per second (TCP only: UDP datagrams are not capped).
    pub rate_bps: Option<u64>,
    /// UDP: share of server→client datagrams held back and sent after the next
    /// [`REORDER_DISTANCE`] datagrams (or after 20 ms if none follow).
    pub reorder: f64,
    /// 100 % loss: UDP dropped, TCP held until the blackout ends.
    pub blackout: bool,
}

impl Impairment {
    /// A perfect link.
    pub const NONE: Impairment = Impairment {
        delay: Duration::ZERO,
        loss: 0.0,
        rate_bps: None,
        reorder: 0.0,
        blackout: false,
    };

    /// A link with round-trip time `rtt` (each direction delayed by half of it).
    pub fn rtt(rtt: Duration) -> Impairment {
        Impairment {
            delay: rtt / 2,
            ..Self::NONE
        }
    }

    /// How late a lost TCP segment arrives: one round trip for the retransmission plus
    /// the 200 ms minimum retransmission timeout of Linux.
    pub fn tcp_stall(&self) -> Duration {
        self.delay * 2 + Duration::from_millis(200)
    }
}

/// How many datagrams overtake a reordered one.
pub const REORDER_DISTANCE: usize = 3;

/// Counters of what the link did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// TCP connections accepted from clients.
    pub connections: u64,
    /// Server→client TCP bytes delivered.
    pub tcp_bytes: u64,
    /// TCP segments "lost" (delivered a retransmission timeout late).
    pub tcp_segments_lost: u64,
    /// UDP datagrams forwarded server→client.
    pub udp_forwarded: u64,
    /// UDP datagrams dropped (loss or blackout), both directions.
    pub udp_dropped: u64,
    /// UDP datagrams reordered.
    pub udp_reordered: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    connections: AtomicU64,
    tcp_bytes: AtomicU64,
    tcp_segments_lost: AtomicU64,
    udp_forwarded: AtomicU64,
    udp_dropped: AtomicU64,
    udp_reordered: AtomicU64,
}

/// What the relay's threads share: the current impairment, counters, the stop flag.
pub(crate) struct Shared {
    impairment: Mutex<Impairment>,
    pub(crate) counters: Counters,
    pub(crate) stop: AtomicBool,
}

impl Shared {
    pub(crate) fn get(&self) -> Impairment {
        *self.impairment.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A relay on 127.0.0.1 that forwards RTSP connections to `upstream` through an impaired
/// link (see the module documentation). Dropping it stops accepting and ends every
/// relayed connection.
pub struct ImpairedLink {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ImpairedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImpairedLink")
            .field("addr", &self.addr)
            .field("impairment", &self.shared.get())
            .finish()
    }
}

impl ImpairedLink {
    /// Starts a relay to the RTSP server at `upstream` (an address on 127.0.0.1) with a
    /// perfect link.
    pub fn start(upstream: SocketAddr) -> io::Result<ImpairedLink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            impairment: Mutex::new(Impairment::NONE),
            counters: Counters::default(),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("impair-accept".into())
            .spawn(move || {
                let mut seed = 0x5eed_u64;
                for conn in listener.incoming() {
                    if sh.stopped() {
                        break;
                    }
                    let Ok(client) = conn else { continue };
                    sh.counters.connections.fetch_add(1, Ordering::Relaxed);
                    seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    if let Err(e) = relay(client, upstream, sh.clone(), seed) {
                        eprintln!("impaired link: cannot relay a connection: {e}");
                    }
                }
            })?;
        Ok(ImpairedLink { addr, shared })
    }

    /// The relay's port on 127.0.0.1: connect here instead of to the server.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `rtsp://127.0.0.1:PORT/path` through the link.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://{}{path}", self.addr)
    }

    /// Changes the impairment; it applies to what is forwarded from now on.
    pub fn set(&self, impairment: Impairment) {
        *self
            .shared
            .impairment
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = impairment;
    }

    /// The impairment in force.
    pub fn impairment(&self) -> Impairment {
        self.shared.get()
    }

    /// What the link did so far.
    pub fn stats(&self) -> LinkStats {
        let c = &self.shared.counters;
        LinkStats {
            connections: c.connections.load(Ordering::Relaxed),
            tcp_bytes: c.tcp_bytes.load(Ordering::Relaxed),
            tcp_segments_lost: c.tcp_segments_lost.load(Ordering::Relaxed),
            udp_forwarded: c.udp_forwarded.load(Ordering::Relaxed),
            udp_dropped: c.udp_dropped.load(Ordering::Relaxed),
            udp_reordered: c.udp_reordered.load(Ordering::Relaxed),
        }
    }
}

impl Drop for ImpairedLink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// The server-side socket's receive buffer: with the relay reading at the capped rate,
/// this (plus the server's send buffer) is the queue in front of the slow link, about
/// what a router or Wi-Fi bridge holds.
const UPSTREAM_RCVBUF: usize = 128 * 1024;

/// Relays one client connection: two pipes (client→server, server→client), each with its
/// delayed writer; RTSP-aware for UDP transports (see `udp`).
fn relay(client: TcpStream, upstream: SocketAddr, sh: Arc<Shared>, seed: u64) -> io::Result<()> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_recv_buffer_size(UPSTREAM_RCVBUF)?;
    sock.connect_timeout(&upstream.into(), Duration::from_secs(2))?;
    let server: TcpStream = sock.into();
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let sessions = Arc::new(udp::Sessions::default());
    pipe::spawn_pipe(
        pipe::Direction::Up,
        client.try_clone()?,
        server.try_clone()?,
        sh.clone(),
        sessions.clone(),
        seed,
    )?;
    pipe::spawn_pipe(
        pipe::Direction::Down,
        server,
        client,
        sh,
        sessions,
        seed ^ 0xdead_beef,
    )?;
    Ok(())
}

/// A small fixed-seed generator (xorshift64*): the same loss pattern on every run of a
/// test, no dependency for a few random numbers.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }
}
