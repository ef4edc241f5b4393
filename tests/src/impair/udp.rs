//! RTP over UDP through the relay: the RTSP `SETUP` exchange is rewritten so that the
//! client's and the server's RTP/RTCP ports are the relay's, and each datagram is dropped,
//! delayed or reordered on its way.
//!
//! The client asks for `client_port=a-b`; the relay binds a pair `p-(p+1)` facing the
//! server and sends `client_port=p-(p+1)` instead. The server answers
//! `server_port=c-d`; the relay binds a pair `q-(q+1)` facing the client and answers
//! `server_port=q-(q+1)` (and the client's own `client_port=a-b`). Clients such as retina
//! `connect()` their UDP sockets to the server port they were told, so datagrams to them
//! must come from `q`/`q+1`, which they do. Ports are consecutive pairs, as RFC 2326
//! expects (retina rejects others).

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::pipe::{delayed_sender, Direction, Sink};
use super::{Rng, Shared, REORDER_DISTANCE};

/// How long a reordered datagram waits for others to overtake it at most.
const REORDER_HOLD: Duration = Duration::from_millis(20);

/// A SETUP sent on, waiting for its response: the client's ports and the relay's
/// server-facing pair.
type PendingSetup = ((u16, u16), Arc<UdpSocket>, Arc<UdpSocket>);

/// The UDP state of one relayed RTSP connection.
#[derive(Default)]
pub(crate) struct Sessions {
    /// SETUPs sent on, in order, waiting for their response.
    pending: Mutex<VecDeque<PendingSetup>>,
    closed: AtomicBool,
}

impl Sessions {
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// Length of the first complete unit in `buf` (an interleaved `$` frame or an RTSP message
/// with its body), or `None` while it is incomplete.
pub(crate) fn unit_len(buf: &[u8]) -> Option<usize> {
    if buf.first() == Some(&b'$') {
        if buf.len() < 4 {
            return None;
        }
        let len = 4 + u16::from_be_bytes([buf[2], buf[3]]) as usize;
        return (buf.len() >= len).then_some(len);
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let body = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (buf.len() >= head_end + body).then_some(head_end + body)
}

/// Rewrites the `Transport` of a `SETUP` request (Up) or its response (Down) and starts
/// the UDP forwarders once both sides' ports are known. Anything else passes unchanged.
pub(crate) fn rewrite(
    dir: Direction,
    unit: Vec<u8>,
    sessions: &Arc<Sessions>,
    sh: &Arc<Shared>,
) -> Vec<u8> {
    if unit.first() == Some(&b'$') {
        return unit;
    }
    let Some(head_end) = unit.windows(4).position(|w| w == b"\r\n\r\n") else {
        return unit;
    };
    let Ok(head) = std::str::from_utf8(&unit[..head_end]) else {
        return unit;
    };
    let is_setup = head.starts_with("SETUP ");
    let is_response = head.starts_with("RTSP/");
    if !(dir == Direction::Up && is_setup || dir == Direction::Down && is_response) {
        return unit;
    }
    let mut out_lines = Vec::new();
    let mut changed = false;
    for line in head.split("\r\n") {
        let is_transport = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("transport"));
        if !is_transport || line.contains("interleaved") {
            out_lines.push(line.to_owned());
            continue;
        }
        match rewrite_transport(dir, line, sessions, sh) {
            Ok(Some(new)) => {
                out_lines.push(new);
                changed = true;
            }
            Ok(None) => out_lines.push(line.to_owned()),
            Err(e) => {
                eprintln!(
                    "impaired link: cannot relay UDP ({e}); the transport is passed on as is"
                );
                out_lines.push(line.to_owned());
            }
        }
    }
    if !changed {
        return unit;
    }
    let mut out = out_lines.join("\r\n").into_bytes();
    out.extend_from_slice(&unit[head_end..]);
    out
}

/// The `a-b` pair after `key=` in a transport line.
fn port_pair(line: &str, key: &str) -> Option<(u16, u16)> {
    let rest = &line[line.find(key)? + key.len()..];
    let value = rest.split([';', ',', ' ']).next()?;
    let (a, b) = value.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn replace_pair(line: &str, key: &str, pair: (u16, u16)) -> String {
    let Some(start) = line.find(key) else {
        return line.to_owned();
    };
    let from = start + key.len();
    let end = line[from..]
        .find([';', ',', ' '])
        .map_or(line.len(), |i| from + i);
    format!("{}{}-{}{}", &line[..from], pair.0, pair.1, &line[end..])
}

fn rewrite_transport(
    dir: Direction,
    line: &str,
    sessions: &Arc<Sessions>,
    sh: &Arc<Shared>,
) -> io::Result<Option<String>> {
    match dir {
        Direction::Up => {
            let Some(client) = port_pair(line, "client_port=") else {
                return Ok(None);
            };
            let (rtp, rtcp) = bind_pair()?;
            let mine = (rtp.local_addr()?.port(), rtcp.local_addr()?.port());
            sessions
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back((client, Arc::new(rtp), Arc::new(rtcp)));
            Ok(Some(replace_pair(line, "client_port=", mine)))
        }
        Direction::Down => {
            let Some(server) = port_pair(line, "server_port=") else {
                return Ok(None);
            };
            let Some((client, up_rtp, up_rtcp)) = sessions
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()
            else {
                return Ok(None);
            };
            let (down_rtp, down_rtcp) = bind_pair()?;
            let mine = (
                down_rtp.local_addr()?.port(),
                down_rtcp.local_addr()?.port(),
            );
            let (down_rtp, down_rtcp) = (Arc::new(down_rtp), Arc::new(down_rtcp));
            let lo = |port| SocketAddr::from(([127, 0, 0, 1], port));
            // Server → client: the impaired direction (RTP and sender reports).
            forward(&up_rtp, down_rtp.clone(), lo(client.0), sessions, sh, true)?;
            forward(
                &up_rtcp,
                down_rtcp.clone(),
                lo(client.1),
                sessions,
                sh,
                true,
            )?;
            // Client → server: hole punching and receiver reports, delayed only.
            forward(&down_rtp, up_rtp, lo(server.0), sessions, sh, false)?;
            forward(&down_rtcp, up_rtcp, lo(server.1), sessions, sh, false)?;
            let line = replace_pair(line, "server_port=", mine);
            Ok(Some(replace_pair(&line, "client_port=", client)))
        }
    }
}

/// Two UDP sockets on consecutive ports of 127.0.0.1, the first even.
fn bind_pair() -> io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..100 {
        let a = UdpSocket::bind("127.0.0.1:0")?;
        let p = a.local_addr()?.port();
        if p % 2 != 0 || p == u16::MAX {
            continue;
        }
        if let Ok(b) = UdpSocket::bind(("127.0.0.1", p + 1)) {
            return Ok((a, b));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no consecutive UDP port pair free",
    ))
}

/// Forwards datagrams received on `from` out of `via` to `to`, on its own thread, until
/// the relay stops or the RTSP connection that set it up ends. `impaired`:
/// apply loss and reordering (the server→client direction); the delay and a blackout
/// apply both ways.
fn forward(
    from: &Arc<UdpSocket>,
    via: Arc<UdpSocket>,
    to: SocketAddr,
    sessions: &Arc<Sessions>,
    sh: &Arc<Shared>,
    impaired: bool,
) -> io::Result<()> {
    let from = from.clone();
    let sessions = sessions.clone();
    let sh = sh.clone();
    from.set_read_timeout(Some(Duration::from_millis(5)))?;
    let tx = delayed_sender("impair-udp-send", Sink::Udp(via, to), sh.clone())?;
    std::thread::Builder::new()
        .name("impair-udp".into())
        .spawn(move || {
            let mut rng = Rng::new(to.port() as u64 * 7919);
            let mut buf = vec![0u8; 65536];
            // Reordered datagrams: (data, datagrams still to overtake, latest send time).
            let mut held: Vec<(Vec<u8>, usize, Instant)> = Vec::new();
            while !sh.stopped() && !sessions.is_closed() {
                let got = match from.recv_from(&mut buf) {
                    Ok((n, _)) => Some(buf[..n].to_vec()),
                    Err(_) => None,
                };
                let imp = sh.get();
                let now = Instant::now();
                let send = |tx: &mpsc::Sender<(Instant, Vec<u8>)>, d: Vec<u8>| {
                    tx.send((now + imp.delay, d)).is_ok()
                };
                if let Some(d) = got {
                    if imp.blackout || impaired && rng.chance(imp.loss) {
                        sh.counters.udp_dropped.fetch_add(1, Ordering::Relaxed);
                    } else if impaired && rng.chance(imp.reorder) {
                        sh.counters.udp_reordered.fetch_add(1, Ordering::Relaxed);
                        held.push((d, REORDER_DISTANCE, now + REORDER_HOLD));
                    } else {
                        if impaired {
                            sh.counters.udp_forwarded.fetch_add(1, Ordering::Relaxed);
                        }
                        if !send(&tx, d) {
                            break;
                        }
                        for h in &mut held {
                            h.1 = h.1.saturating_sub(1);
                        }
                    }
                }
                let mut i = 0;
                while i < held.len() {
                    if held[i].1 == 0 || held[i].2 <= now {
                        let (d, _, _) = held.remove(i);
                        sh.counters.udp_forwarded.fetch_add(1, Ordering::Relaxed);
                        if !send(&tx, d) {
                            return;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_messages_with_their_body_or_interleaved_frames() {
        assert_eq!(unit_len(b"$\x00\x00\x03abcX"), Some(7));
        assert_eq!(unit_len(b"$\x00\x00\x03ab"), None);
        let msg = b"RTSP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nv=0rest";
        assert_eq!(unit_len(msg), Some(msg.len() - 4));
        assert_eq!(unit_len(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n"), None);
        assert_eq!(
            unit_len(b"RTSP/1.0 200 OK\r\ncontent-length:  5\r\n\r\nab"),
            None
        );
    }

    #[test]
    fn port_pairs_are_found_and_replaced_in_place() {
        let t = "Transport: RTP/AVP;unicast;client_port=5000-5001;server_port=7000-7001;ssrc=1";
        assert_eq!(port_pair(t, "client_port="), Some((5000, 5001)));
        assert_eq!(port_pair(t, "server_port="), Some((7000, 7001)));
        assert_eq!(
            replace_pair(t, "server_port=", (40000, 40001)),
            "Transport: RTP/AVP;unicast;client_port=5000-5001;server_port=40000-40001;ssrc=1"
        );
        let end = "Transport: RTP/AVP/UDP;unicast;client_port=5000-5001";
        assert_eq!(
            replace_pair(end, "client_port=", (6, 7)),
            "Transport: RTP/AVP/UDP;unicast;client_port=6-7"
        );
        assert_eq!(
            port_pair("Transport: RTP/AVP/TCP;interleaved=0-1", "client_port="),
            None
        );
    }

    #[test]
    fn port_pairs_are_consecutive_and_even() {
        let (a, b) = bind_pair().unwrap();
        let p = a.local_addr().unwrap().port();
        assert_eq!(p % 2, 0);
        assert_eq!(b.local_addr().unwrap().port(), p + 1);
    }
}
