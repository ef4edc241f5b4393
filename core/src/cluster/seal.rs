//! Sealed camera credentials: what the desired-camera bucket holds instead of a password.
//!
//! ChaCha20-Poly1305 from `ring` (already in the tree through the NATS client's rustls),
//! under a key derived with HKDF-SHA256 from the cluster key (`CAMKIT_CLUSTER_KEY`). Each
//! seal has a fresh random 96-bit nonce (credentials are written a few times per camera,
//! far from the 2^32 seals where random nonces start to matter), and the bucket key of the
//! camera is the associated data, so a sealed blob copied onto another camera does not
//! open. A key-check value sealed the same way lets a node with the wrong cluster key say
//! so at start instead of failing on every camera.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, ErrorKind, Result};

/// The shortest cluster key accepted.
pub const MIN_CLUSTER_KEY_LEN: usize = 16;

/// What the key-check value seals.
const KEY_CHECK: &[u8] = b"camkit cluster key check v1";

/// Seals and opens credentials with the cluster key.
pub(crate) struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key>)")
    }
}

fn wrong_key() -> Error {
    Error::new(
        ErrorKind::Unauthorized,
        "CAMKIT_CLUSTER_KEY does not match the key the cluster's cameras were sealed with; \
         give every node the same cluster key",
    )
    .with_field("clusterKey")
}

impl Sealer {
    /// A sealer for this cluster key (at least [`MIN_CLUSTER_KEY_LEN`] bytes).
    pub fn new(secret: &str) -> Result<Self> {
        if secret.len() < MIN_CLUSTER_KEY_LEN {
            return Err(Error::invalid(
                "clusterKey",
                format!(
                    "CAMKIT_CLUSTER_KEY must be at least {MIN_CLUSTER_KEY_LEN} characters \
                     (make one with `openssl rand -base64 32`)"
                ),
            ));
        }
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"camkit cluster v1");
        let prk = salt.extract(secret.as_bytes());
        let okm = prk
            .expand(&[b"camera credentials"], &CHACHA20_POLY1305)
            .map_err(|_| Error::new(ErrorKind::Internal, "HKDF refused the key length"))?;
        Ok(Sealer {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            rng: SystemRandom::new(),
        })
    }

    /// `plain` sealed for `aad`, as base64url text (nonce, ciphertext, tag).
    pub fn seal(&self, aad: &str, plain: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::new(ErrorKind::Internal, "the system random source failed"))?;
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut data,
            )
            .map_err(|_| Error::new(ErrorKind::Internal, "sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The plaintext of a [`seal`](Self::seal) for `aad`; `Unauthorized` naming the cluster
    /// key when it does not open.
    pub fn open(&self, aad: &str, sealed: &str) -> Result<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| wrong_key())?;
        if raw.len() < NONCE_LEN {
            return Err(wrong_key());
        }
        let (nonce, data) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong_key())?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut data)
            .map_err(|_| wrong_key())?;
        Ok(plain.to_vec())
    }

    /// A key-check value for the bucket.
    pub fn key_check(&self) -> Result<String> {
        self.seal("key-check", KEY_CHECK)
    }

    /// Whether `sealed` is a key-check value made with this key; the error names the setting.
    pub fn verify_key_check(&self, sealed: &str) -> Result<()> {
        match self.open("key-check", sealed) {
            Ok(p) if p == KEY_CHECK => Ok(()),
            _ => Err(wrong_key()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding_to_the_camera() {
        let s = Sealer::new("0123456789abcdef-cluster").unwrap();
        let sealed = s.seal("cam.a", b"p@ss word").unwrap();
        assert!(!sealed.contains("p@ss"));
        assert_eq!(s.open("cam.a", &sealed).unwrap(), b"p@ss word");
        // Another camera's key as associated data does not open it.
        assert_eq!(
            s.open("cam.b", &sealed).unwrap_err().kind(),
            ErrorKind::Unauthorized
        );
        // Two seals of the same text differ (fresh nonces).
        assert_ne!(sealed, s.seal("cam.a", b"p@ss word").unwrap());
    }

    #[test]
    fn wrong_key_is_named() {
        let a = Sealer::new("0123456789abcdef-cluster").unwrap();
        let b = Sealer::new("another key of enough length").unwrap();
        let check = a.key_check().unwrap();
        a.verify_key_check(&check).unwrap();
        let e = b.verify_key_check(&check).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.field(), Some("clusterKey"));
        assert!(e.message().contains("CAMKIT_CLUSTER_KEY"));
        let e = b.open("cam.a", "!!not base64").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn short_key_is_refused() {
        let e = Sealer::new("short").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.field(), Some("clusterKey"));
    }
}
