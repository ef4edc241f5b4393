//! H.264 RTP packetization (RFC 6184, packetization-mode=1: single NAL unit packets and
//! FU-A fragments) and RTCP sender reports (RFC 3550).

/// Largest RTP payload produced; NAL units bigger than this are sent as FU-A fragments.
pub(crate) const MAX_PAYLOAD: usize = 1400;

/// RTP header size without CSRCs or extensions.
const HEADER_LEN: usize = 12;

/// FU-A NAL unit type (RFC 6184 section 5.8).
const FU_A: u8 = 28;

/// Packetizes one RTP stream: a fixed SSRC and payload type, and a sequence number that
/// increments by one per packet.
#[derive(Debug)]
pub(crate) struct Packetizer {
    ssrc: u32,
    payload_type: u8,
    next_seq: u16,
    max_payload: usize,
    /// Packets and payload octets sent, for sender reports.
    packets: u32,
    octets: u32,
    scratch: Vec<u8>,
}

impl Packetizer {
    /// A packetizer starting at sequence number `first_seq`.
    pub(crate) fn new(ssrc: u32, payload_type: u8, first_seq: u16) -> Self {
        Packetizer {
            ssrc,
            payload_type: payload_type & 0x7F,
            next_seq: first_seq,
            max_payload: MAX_PAYLOAD,
            packets: 0,
            octets: 0,
            scratch: Vec::with_capacity(HEADER_LEN + MAX_PAYLOAD),
        }
    }

    #[cfg(test)]
    fn with_max_payload(mut self, max_payload: usize) -> Self {
        self.max_payload = max_payload.max(3);
        self
    }

    /// The SSRC.
    pub(crate) fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number of the next packet.
    pub(crate) fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Packetizes one access unit (NAL units without start codes) with RTP timestamp
    /// `timestamp`, handing each finished RTP packet to `emit`. The marker bit is set on the
    /// last packet of the access unit.
    pub(crate) fn packetize(
        &mut self,
        nals: &[impl AsRef<[u8]>],
        timestamp: u32,
        mut emit: impl FnMut(&[u8]),
    ) {
        let nals: Vec<&[u8]> = nals
            .iter()
            .map(AsRef::as_ref)
            .filter(|n| !n.is_empty())
            .collect();
        let count = nals.len();
        for (i, nal) in nals.into_iter().enumerate() {
            let last_nal = i + 1 == count;
            if nal.len() <= self.max_payload {
                self.packet(timestamp, last_nal, &[nal], &mut emit);
                continue;
            }
            // FU-A: indicator keeps F and NRI, header carries S/E and the original type.
            let indicator = (nal[0] & 0xE0) | FU_A;
            let nal_type = nal[0] & 0x1F;
            let body = &nal[1..];
            let chunk = self.max_payload - 2;
            let pieces = body.len().div_ceil(chunk);
            for (j, piece) in body.chunks(chunk).enumerate() {
                let start = j == 0;
                let end = j + 1 == pieces;
                let fu_header = (u8::from(start) << 7) | (u8::from(end) << 6) | nal_type;
                self.packet(
                    timestamp,
                    last_nal && end,
                    &[&[indicator, fu_header], piece],
                    &mut emit,
                );
            }
        }
    }

    fn packet(
        &mut self,
        timestamp: u32,
        marker: bool,
        payload: &[&[u8]],
        emit: &mut impl FnMut(&[u8]),
    ) {
        let buf = &mut self.scratch;
        buf.clear();
        buf.push(0x80); // V=2, no padding, no extension, no CSRC
        buf.push((u8::from(marker) << 7) | self.payload_type);
        buf.extend_from_slice(&self.next_seq.to_be_bytes());
        buf.extend_from_slice(&timestamp.to_be_bytes());
        buf.extend_from_slice(&self.ssrc.to_be_bytes());
        let mut len = 0;
        for p in payload {
            buf.extend_from_slice(p);
            len += p.len();
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(len as u32);
        emit(buf);
    }

    /// An RTCP compound packet: a sender report (no reception report blocks) for wall time
    /// `ntp` (64-bit NTP format) and the RTP timestamp of that same instant, followed by an
    /// SDES packet with the CNAME.
    pub(crate) fn sender_report(&self, ntp: u64, rtp_time: u32, cname: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        // SR: V=2, RC=0, PT=200, length = 6 (28 bytes / 4 - 1).
        out.extend_from_slice(&[0x80, 200, 0, 6]);
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&ntp.to_be_bytes());
        out.extend_from_slice(&rtp_time.to_be_bytes());
        out.extend_from_slice(&self.packets.to_be_bytes());
        out.extend_from_slice(&self.octets.to_be_bytes());
        // SDES: V=2, SC=1, PT=202; one chunk: SSRC, CNAME item, END + padding to 32 bits.
        let cname = &cname.as_bytes()[..cname.len().min(255)];
        let items_len = 2 + cname.len();
        let pad = 4 - items_len % 4; // at least one zero octet ends the item list
        let chunk_len = 4 + items_len + pad;
        let words = (4 + chunk_len) / 4 - 1;
        out.extend_from_slice(&[0x81, 202]);
        out.extend_from_slice(&(words as u16).to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.push(1); // CNAME
        out.push(cname.len() as u8);
        out.extend_from_slice(cname);
        out.extend(std::iter::repeat_n(0u8, pad));
        out
    }
}

/// `t` as a 64-bit NTP timestamp (seconds since 1900 in the high 32 bits, fraction below).
pub(crate) fn ntp_time(t: std::time::SystemTime) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(p: &mut Packetizer, nals: &[Vec<u8>], ts: u32) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        p.packetize(nals, ts, |pkt| out.push(pkt.to_vec()));
        out
    }

    /// Reassembles NAL units from packets the way a receiver does.
    fn depacketize(pkts: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut frag: Option<Vec<u8>> = None;
        for p in pkts {
            let payload = &p[HEADER_LEN..];
            if payload[0] & 0x1F == FU_A {
                let (ind, hdr) = (payload[0], payload[1]);
                if hdr & 0x80 != 0 {
                    assert!(frag.is_none());
                    frag = Some(vec![(ind & 0xE0) | (hdr & 0x1F)]);
                }
                let f = frag.as_mut().expect("FU-A continuation without start");
                f.extend_from_slice(&payload[2..]);
                if hdr & 0x40 != 0 {
                    nals.push(frag.take().unwrap());
                }
            } else {
                assert!(frag.is_none());
                nals.push(payload.to_vec());
            }
        }
        assert!(frag.is_none());
        nals
    }

    #[test]
    fn single_nals_and_fragments_round_trip() {
        let mut p = Packetizer::new(0x1234_5678, 96, 65_534).with_max_payload(100);
        let sps = vec![0x67, 1, 2, 3];
        let pps = vec![0x68, 4, 5];
        let idr: Vec<u8> = std::iter::once(0x65)
            .chain((0..1000).map(|i| i as u8))
            .collect();
        let nals = vec![sps.clone(), pps.clone(), idr.clone()];
        let pkts = collect(&mut p, &nals, 9000);
        // 2 single + ceil(1000 / 98) = 11 fragments.
        assert_eq!(pkts.len(), 13);
        for (i, pkt) in pkts.iter().enumerate() {
            assert_eq!(pkt[0], 0x80);
            assert_eq!(pkt[1] & 0x7F, 96);
            let marker = pkt[1] & 0x80 != 0;
            assert_eq!(
                marker,
                i == pkts.len() - 1,
                "marker only on the last packet"
            );
            let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
            assert_eq!(seq, 65_534u16.wrapping_add(i as u16));
            assert_eq!(u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]), 9000);
            assert_eq!(
                u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
                0x1234_5678
            );
            assert!(pkt.len() - HEADER_LEN <= 100);
        }
        // FU-A headers: start bit on the first fragment, end bit on the last, NRI kept.
        assert_eq!(pkts[2][HEADER_LEN], 0x60 | FU_A);
        assert_eq!(pkts[2][HEADER_LEN + 1], 0x80 | 5);
        assert_eq!(pkts[12][HEADER_LEN + 1], 0x40 | 5);
        assert_eq!(depacketize(&pkts), nals);
        assert_eq!(p.next_seq(), 65_534u16.wrapping_add(13));

        // A NAL exactly at the limit is not fragmented.
        let exact: Vec<u8> = std::iter::once(0x41)
            .chain(std::iter::repeat_n(7, 99))
            .collect();
        let pkts = collect(&mut p, std::slice::from_ref(&exact), 12_000);
        assert_eq!(pkts.len(), 1);
        assert!(pkts[0][1] & 0x80 != 0);
        assert_eq!(depacketize(&pkts), vec![exact]);
    }

    #[test]
    fn default_payload_limit() {
        let mut p = Packetizer::new(1, 96, 0);
        let big: Vec<u8> = std::iter::once(0x65)
            .chain(std::iter::repeat_n(9, 50_000))
            .collect();
        let pkts = collect(&mut p, std::slice::from_ref(&big), 0);
        assert!(pkts.iter().all(|p| p.len() - HEADER_LEN <= MAX_PAYLOAD));
        assert_eq!(depacketize(&pkts), vec![big]);
    }

    #[test]
    fn sender_report_layout() {
        let mut p = Packetizer::new(0xAABB_CCDD, 96, 0);
        let _ = collect(&mut p, &[vec![0x65, 1, 2, 3]], 0);
        for cname in ["", "a", "ab", "camkit-demo"] {
            let sr = p.sender_report(0x0102_0304_0506_0708, 99, cname);
            assert_eq!(sr.len() % 4, 0);
            assert_eq!(&sr[..4], &[0x80, 200, 0, 6]);
            assert_eq!(&sr[8..16], &0x0102_0304_0506_0708u64.to_be_bytes());
            assert_eq!(&sr[20..24], &1u32.to_be_bytes(), "one packet sent");
            assert_eq!(&sr[24..28], &4u32.to_be_bytes(), "four payload octets");
            let sdes = &sr[28..];
            assert_eq!(sdes[1], 202);
            let words = usize::from(u16::from_be_bytes([sdes[2], sdes[3]]));
            assert_eq!((words + 1) * 4, sdes.len());
            assert_eq!(sdes[8], 1);
            assert_eq!(usize::from(sdes[9]), cname.len());
            assert_eq!(*sdes.last().unwrap(), 0);
        }
    }

    #[test]
    fn ntp_epoch() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1500);
        let ntp = ntp_time(t);
        assert_eq!(ntp >> 32, 2_208_988_801);
        assert_eq!(ntp & 0xFFFF_FFFF, 1 << 31);
    }
}
