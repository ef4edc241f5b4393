//! What the cluster's buckets hold, and how camera ids become keys and subject tokens.
//!
//! Bucket keys and subject tokens allow only `[A-Za-z0-9_=-]` (and `.` between tokens); a
//! camera id allows nearly anything, so ids are written base64url (no padding) in both.
//! None of these records ever holds a password: a camera's credentials are in `sealed`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::seal::Sealer;
use crate::config::CameraConfig;
use crate::error::{Error, ErrorKind, Result};

/// The key-check value's key in the cameras bucket.
pub(crate) const KEY_CHECK_KEY: &str = "meta.keycheck";
/// The prefix of camera keys in the cameras and leases buckets.
pub(crate) const CAMERA_PREFIX: &str = "cam.";

/// The token of a camera id in keys and subjects.
pub(crate) fn token(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// The bucket key of a camera.
pub(crate) fn camera_key(id: &str) -> String {
    format!("{CAMERA_PREFIX}{}", token(id))
}

/// The camera id of a bucket key.
pub(crate) fn camera_id(key: &str) -> Option<String> {
    let t = key.strip_prefix(CAMERA_PREFIX)?;
    String::from_utf8(URL_SAFE_NO_PAD.decode(t).ok()?).ok()
}

/// A node's heartbeat in the nodes bucket (key: the node id).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeRecord {
    pub node: String,
    /// Random per process: a restarted node with the same id is another instance.
    pub instance: String,
    pub started_at_ms: u64,
    pub at_ms: u64,
    /// The cameras it owns (holds a fresh lease for).
    pub cameras: Vec<String>,
    /// How many of them stream.
    pub streaming: usize,
    pub version: String,
}

/// A lease in the leases bucket (key: the camera's key).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LeaseRecord {
    pub node: String,
    pub instance: String,
    pub at_ms: u64,
}

/// The credentials, sealed.
#[derive(Serialize, Deserialize)]
struct Credentials {
    username: Option<String>,
    password: Option<String>,
}

/// A camera of the desired set in the cameras bucket (key: the camera's key).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DesiredRecord {
    /// The config without credentials (none in `username`, `password` or the URL).
    pub config: CameraConfig,
    /// The credentials, sealed with the cluster key for this camera's key.
    pub sealed: Option<String>,
    /// The node that wrote it.
    pub added_by: String,
    pub at_ms: u64,
}

impl DesiredRecord {
    /// The record of `config`; validates it first (errors name the field).
    pub fn new(config: &CameraConfig, sealer: &Sealer, node: &str) -> Result<DesiredRecord> {
        let source = config.validate()?;
        let mut clean = config.clone();
        if clean.url.is_some() {
            // The resolved URL, which never carries credentials.
            clean.url = Some(source.url().to_string());
        }
        // What the address resolved to: explicit fields win over credentials in the URL.
        let creds = source.credentials().map(|c| Credentials {
            username: Some(c.username.clone()),
            password: Some(c.password.clone()),
        });
        clean.username = None;
        clean.password = None;
        let sealed = if let Some(creds) = creds {
            let plain = serde_json::to_vec(&creds)
                .map_err(|e| Error::new(ErrorKind::Internal, format!("credentials: {e}")))?;
            Some(sealer.seal(&camera_key(&config.id), &plain)?)
        } else {
            None
        };
        Ok(DesiredRecord {
            config: clean,
            sealed,
            added_by: node.to_owned(),
            at_ms: crate::util::epoch_ms(std::time::SystemTime::now()),
        })
    }

    /// The config to connect with, credentials unsealed.
    pub fn open(&self, sealer: &Sealer) -> Result<CameraConfig> {
        let mut config = self.config.clone();
        if let Some(sealed) = &self.sealed {
            let plain = sealer.open(&camera_key(&config.id), sealed)?;
            let creds: Credentials = serde_json::from_slice(&plain)
                .map_err(|e| Error::new(ErrorKind::Internal, format!("credentials: {e}")))?;
            config.username = creds.username;
            config.password = creds.password;
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_any_id() {
        for id in ["door", "hall way/2", "Ünïcode ✓", "a.b.c", "*>"] {
            let k = camera_key(id);
            assert!(k[CAMERA_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(camera_id(&k).as_deref(), Some(id));
        }
        assert_eq!(camera_id(KEY_CHECK_KEY), None);
    }

    #[test]
    fn record_holds_no_password() {
        let sealer = Sealer::new("a cluster key of some length").unwrap();
        for cfg in [
            CameraConfig::from_url("c1", "rtsp://admin:s3cr3t-pw@10.0.0.5:8554/live"),
            CameraConfig::from_host("c2", "10.0.0.6").credentials("admin", "s3cr3t-pw"),
        ] {
            let rec = DesiredRecord::new(&cfg, &sealer, "n1").unwrap();
            let json = serde_json::to_string(&rec).unwrap();
            assert!(!json.contains("s3cr3t-pw"), "{json}");
            assert!(!json.contains("admin"), "{json}");
            let back: DesiredRecord = serde_json::from_str(&json).unwrap();
            let opened = back.open(&sealer).unwrap();
            let src = opened.validate().unwrap();
            assert_eq!(src.username(), Some("admin"));
            assert_eq!(src.credentials().unwrap().password, "s3cr3t-pw");
        }
    }
}
