//! One direction of a relayed TCP connection, and the delayed sender both TCP and UDP use.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::udp::{self, Sessions};
use super::{Rng, Shared};

/// TCP's maximum segment size on a 1500-byte MTU path (with timestamps).
const MSS: usize = 1448;
/// How long a blocked thread sleeps before looking at the impairment again.
const POLL: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Client → server (requests, RTCP receiver reports).
    Up,
    /// Server → client (responses, interleaved RTP): the capped, lossy direction.
    Down,
}

/// Where a delayed sender writes.
pub(crate) enum Sink {
    Tcp(TcpStream),
    Udp(Arc<UdpSocket>, SocketAddr),
}

impl Sink {
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Sink::Tcp(s) => s.write_all(data),
            // A datagram the receiver cannot take (port closed, buffer full) is lost, as
            // on a network; the link stays up.
            Sink::Udp(s, to) => {
                let _ = s.send_to(data, *to);
                Ok(())
            }
        }
    }
}

/// Queues data for delivery at a given instant, in instant order (ties in queue order),
/// on its own thread; holds everything during a blackout. Dropping every clone of the
/// sender flushes what is queued and ends the thread.
pub(crate) fn delayed_sender(
    name: &str,
    mut sink: Sink,
    sh: Arc<Shared>,
) -> io::Result<mpsc::Sender<(Instant, Vec<u8>)>> {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut heap: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
            let mut seq = 0u64;
            let mut open = true;
            while (open || !heap.is_empty()) && !sh.stopped() {
                let now = Instant::now();
                let wait = match heap.peek() {
                    Some(Reverse((at, _, _))) => at.saturating_duration_since(now).min(POLL),
                    None => Duration::from_millis(50),
                };
                if open {
                    match rx.recv_timeout(wait) {
                        Ok((at, data)) => {
                            heap.push(Reverse((at, seq, data)));
                            seq += 1;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => open = false,
                    }
                } else {
                    std::thread::sleep(wait);
                }
                if sh.get().blackout {
                    continue;
                }
                let now = Instant::now();
                while matches!(heap.peek(), Some(Reverse((at, _, _))) if *at <= now) {
                    let Some(Reverse((_, _, data))) = heap.pop() else {
                        break;
                    };
                    if sink.send(&data).is_err() {
                        if let Sink::Tcp(s) = &sink {
                            let _ = s.shutdown(Shutdown::Both);
                        }
                        return;
                    }
                }
            }
            if let Sink::Tcp(s) = &sink {
                let _ = s.shutdown(Shutdown::Write);
            }
        })?;
    Ok(tx)
}

/// Relays `from` → `to` through the impairment, RTSP-aware: the stream is cut into RTSP
/// messages and interleaved (`$`) frames, and `SETUP` transports are rewritten by
/// [`udp`] so that UDP RTP flows through the relay too.
pub(crate) fn spawn_pipe(
    dir: Direction,
    mut from: TcpStream,
    to: TcpStream,
    sh: Arc<Shared>,
    sessions: Arc<Sessions>,
    seed: u64,
) -> io::Result<()> {
    let name = match dir {
        Direction::Up => "impair-up",
        Direction::Down => "impair-down",
    };
    let tx = delayed_sender(&format!("{name}-send"), Sink::Tcp(to), sh.clone())?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut rng = Rng::new(seed);
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 16 * 1024];
            let mut next_read = Instant::now();
            let mut last_at = Instant::now();
            let mut stall_until = Instant::now();
            // Short reads so a stop or blackout is noticed.
            let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
            'read: loop {
                if sh.stopped() || sessions.is_closed() {
                    break;
                }
                let imp = sh.get();
                if imp.blackout {
                    std::thread::sleep(POLL);
                    continue;
                }
                let rate = if dir == Direction::Down {
                    imp.rate_bps
                } else {
                    None
                };
                let now = Instant::now();
                if rate.is_some() && next_read > now {
                    std::thread::sleep((next_read - now).min(POLL));
                    continue;
                }
                let max = if rate.is_some() { 4 * MSS } else { chunk.len() };
                let n = match from.read(&mut chunk[..max]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::TimedOut =>
                    {
                        continue
                    }
                    Err(_) => break,
                };
                let now = Instant::now();
                if let Some(bps) = rate {
                    let secs = (n as f64 * 8.0) / bps.max(1) as f64;
                    next_read = next_read.max(now) + Duration::from_secs_f64(secs);
                }
                if dir == Direction::Down {
                    sh.counters.tcp_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
                // Each segment lost makes it, and all behind it, late by a retransmission.
                for _ in 0..n.div_ceil(MSS) {
                    if rng.chance(imp.loss) {
                        stall_until = stall_until.max(now + imp.tcp_stall());
                        sh.counters
                            .tcp_segments_lost
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                buf.extend_from_slice(&chunk[..n]);
                let at = (now + imp.delay).max(stall_until).max(last_at);
                last_at = at;
                // Forward every complete unit, rewritten where it carries a transport.
                while let Some(len) = udp::unit_len(&buf) {
                    let unit: Vec<u8> = buf.drain(..len).collect();
                    let unit = udp::rewrite(dir, unit, &sessions, &sh);
                    if tx.send((at, unit)).is_err() {
                        break 'read;
                    }
                }
                // Not RTSP after all (no end of head in 64 KiB): forward as it is.
                if buf.len() > 64 * 1024 {
                    let _ = tx.send((at, std::mem::take(&mut buf)));
                }
            }
            if !buf.is_empty() {
                let _ = tx.send((last_at, buf));
            }
            drop(tx);
            // The connection is over: the other pipe and the session's UDP forwarders end
            // too (the writer shuts the other socket's write side once it has flushed).
            sessions.close();
            let _ = from.shutdown(Shutdown::Read);
        })?;
    Ok(())
}
