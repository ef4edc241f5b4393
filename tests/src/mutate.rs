//! A small deterministic input mutator for running fuzz targets on stable Rust: the seed
//! corpus plus inputs derived from it the way libFuzzer's default mutators do (bit flips,
//! byte changes, inserts, deletes, splices, interesting values), from a fixed-seed PRNG so
//! a failure reproduces. Not coverage-guided; `cargo fuzz` is the long run.

/// xorshift64*: tiny, fast, deterministic, good enough to pick mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced by a fixed non-zero value).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// `true` with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Bytes libFuzzer likes to try: boundaries of integer types and the RTSP/H.264 markers
/// the targets parse.
const INTERESTING: &[&[u8]] = &[
    &[0],
    &[0xFF],
    &[0x7F],
    &[0x80],
    &[0, 0, 1],
    &[0, 0, 0, 1],
    &[0, 0, 3],
    &[0x67],
    &[0x68],
    &[0x65],
    &[0x41],
    &[0xFF, 0xD8],
    &[0xFF, 0xD9],
    &[0xFF, 0xC0],
    b"\r\n",
    b"\r\n\r\n",
    b"$",
    b"@",
    b":",
    b"%",
    b"%00",
    b"%40",
    b"/",
    b"[",
    b"]",
    b"#",
    b"?",
    b"\\",
    b"Content-Length: 99999\r\n",
    b"Session: 1\r\n",
    b"CSeq: 1\r\n",
    b"\xff\xff\xff\xff",
    b"\"",
    b"\\u0000",
];

/// One mutation of `input` (never longer than `max_len`), with `other` as splice material.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut v = input.to_vec();
    // Several stacked mutations, as libFuzzer does.
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(10) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.byte();
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let n = 1 + rng.below(8);
                for _ in 0..n {
                    v.insert(i, rng.byte());
                }
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = 1 + rng.below(16.min(v.len() - i));
                v.drain(i..i + n);
            }
            4 if !other.is_empty() => {
                // Splice: a prefix of this, a piece of the other.
                let cut = rng.below(v.len() + 1);
                let from = rng.below(other.len());
                let n = 1 + rng.below(other.len() - from);
                v.truncate(cut);
                v.extend_from_slice(&other[from..from + n]);
            }
            5 => {
                let ins = INTERESTING[rng.below(INTERESTING.len())];
                let i = rng.below(v.len() + 1);
                if rng.one_in(2) && i + ins.len() <= v.len() {
                    v[i..i + ins.len()].copy_from_slice(ins);
                } else {
                    v.splice(i..i, ins.iter().copied());
                }
            }
            6 if !v.is_empty() => {
                v.truncate(rng.below(v.len()));
            }
            7 if v.len() >= 2 => {
                // Duplicate a chunk (repeats headers, NAL units, frames).
                let i = rng.below(v.len());
                let n = 1 + rng.below((v.len() - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            8 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = v[i].wrapping_add(if rng.one_in(2) { 1 } else { 0xFF });
            }
            _ => {
                let n = rng.below(32);
                v.extend((0..n).map(|_| rng.byte()));
            }
        }
    }
    v.truncate(max_len);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_bounded() {
        let seed = b"DESCRIBE rtsp://h/demo RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        let run = || {
            let mut rng = Rng::new(42);
            (0..200)
                .map(|_| mutate(&mut rng, seed, b"other", 64))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run(), "same seed, same inputs");
        assert!(a.iter().all(|m| m.len() <= 64));
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(distinct.len() > 150, "{} distinct", distinct.len());
        let mut r = Rng::new(0);
        assert!((0..100).all(|_| r.below(7) < 7));
    }
}
