//! Where Moondream is and how camkit talks to it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};

/// The Moondream cloud API.
pub const CLOUD_URL: &str = "https://api.moondream.ai/v1";
/// Moondream Station's default address (a local server that needs no key).
pub const STATION_URL: &str = "http://localhost:2020/v1";
/// The environment variable read for the API key when [`MoondreamConfig::api_key`] is `None`.
pub const API_KEY_ENV: &str = "MOONDREAM_API_KEY";

/// The cloud's host: a configuration pointing there without a key cannot work.
const CLOUD_HOST: &str = "api.moondream.ai";

/// How to reach Moondream.
///
/// Deserializes from camelCase JSON with durations in milliseconds
/// (`{"baseUrl":"http://localhost:2020/v1","timeoutMs":10000}`). The API key is never
/// serialized and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct MoondreamConfig {
    /// The API's base URL, up to and including `/v1`: [`CLOUD_URL`] (default) or a Moondream
    /// Station ([`STATION_URL`]). `http` or `https`, without credentials.
    pub base_url: String,
    /// The cloud API key, sent as `X-Moondream-Auth`. `None` reads [`API_KEY_ENV`]
    /// (`MOONDREAM_API_KEY`); Moondream Station needs none.
    #[serde(skip_serializing)]
    pub api_key: Option<String>,
    /// Limit for one attempt: connecting, sending, and receiving the whole answer (for a
    /// streamed answer: its headers, then each next piece). 100 ms – 10 min, default 30 s.
    #[serde(rename = "timeoutMs", with = "super::millis")]
    pub timeout: Duration,
    /// Retries after `429 Too Many Requests` and `500/502/503/504`, waiting as the service's
    /// `Retry-After` says (or 0.5 s, 1 s, 2 s … with jitter). 0–10, default 2.
    pub max_retries: u32,
    /// Pictures are sent with their long side scaled down to at most this many pixels
    /// (never up). 64–4096, default 768 (what Moondream's own clients send).
    pub max_image_side: u32,
}

impl Default for MoondreamConfig {
    fn default() -> Self {
        MoondreamConfig {
            base_url: CLOUD_URL.to_owned(),
            api_key: None,
            timeout: Duration::from_secs(30),
            max_retries: 2,
            max_image_side: 768,
        }
    }
}

impl std::fmt::Debug for MoondreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoondreamConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("max_image_side", &self.max_image_side)
            .finish()
    }
}

impl MoondreamConfig {
    /// The cloud with this API key.
    pub fn cloud(api_key: impl Into<String>) -> Self {
        MoondreamConfig {
            api_key: Some(api_key.into()),
            ..Default::default()
        }
    }

    /// A Moondream Station at `base_url` (e.g. [`STATION_URL`]).
    pub fn station(base_url: impl Into<String>) -> Self {
        MoondreamConfig {
            base_url: base_url.into(),
            ..Default::default()
        }
    }

    /// Checks every field (the message names the field) and resolves the API key, from
    /// the environment when not given.
    pub(crate) fn validate(&self) -> Result<Resolved> {
        let base = parse_base_url(&self.base_url)?;
        let key = match &self.api_key {
            Some(k) => Some(check_key(k, "apiKey")?),
            None => match std::env::var(API_KEY_ENV) {
                Ok(k) if !k.trim().is_empty() => Some(check_key(k.trim(), API_KEY_ENV)?),
                _ => None,
            },
        };
        if key.is_none() && base.host_str() == Some(CLOUD_HOST) {
            return Err(Error::invalid(
                "apiKey",
                format!(
                    "the Moondream cloud ({CLOUD_HOST}) needs an API key: set apiKey or \
                     {API_KEY_ENV}; a Moondream Station needs none (baseUrl {STATION_URL})"
                ),
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&self.timeout) {
            return Err(Error::invalid(
                "timeoutMs",
                format!("{} is not between 100 and 600000", self.timeout.as_millis()),
            ));
        }
        if self.max_retries > 10 {
            return Err(Error::invalid(
                "maxRetries",
                format!("{} is not between 0 and 10", self.max_retries),
            ));
        }
        if !(64..=4096).contains(&self.max_image_side) {
            return Err(Error::invalid(
                "maxImageSide",
                format!("{} is not between 64 and 4096", self.max_image_side),
            ));
        }
        let loopback = match base.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        Ok(Resolved {
            base: base.as_str().trim_end_matches('/').to_owned(),
            key,
            loopback,
        })
    }
}

/// A checked configuration's derived values.
pub(crate) struct Resolved {
    /// The base URL without a trailing `/`; paths (`/query` …) are appended.
    pub base: String,
    pub key: Option<String>,
    /// The service is on this machine (`localhost`, 127.0.0.0/8, `::1`).
    pub loopback: bool,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("base", &self.base)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("loopback", &self.loopback)
            .finish()
    }
}

fn parse_base_url(s: &str) -> Result<Url> {
    let url = Url::parse(s.trim())
        .map_err(|e| Error::invalid("baseUrl", format!("{s:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(
            "baseUrl",
            format!("{s:?} must start with http:// or https://"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo it: the userinfo may hold a secret.
        return Err(Error::invalid(
            "baseUrl",
            "must not contain credentials (user:pass@); give the key as apiKey",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("baseUrl", format!("{s:?} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(
            "baseUrl",
            format!("{s:?} must not have a query or fragment"),
        ));
    }
    Ok(url)
}

/// A key must be a valid header value; the message never shows it.
fn check_key(k: &str, field: &str) -> Result<String> {
    if k.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if !k.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            "must be printable ASCII without spaces (check for a stray newline or quote)",
        ));
    }
    Ok(k.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn field_of(c: &MoondreamConfig) -> String {
        let e = c.validate().expect_err("invalid");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        e.message().split(':').next().unwrap_or_default().to_owned()
    }

    #[test]
    fn validation_names_fields() {
        let ok = MoondreamConfig::cloud("k-123");
        let r = ok.validate().unwrap();
        assert_eq!(r.base, CLOUD_URL);
        assert_eq!(r.key.as_deref(), Some("k-123"));
        let station = MoondreamConfig::station("http://127.0.0.1:2020/v1/");
        let r = station.validate().unwrap();
        assert_eq!(r.base, "http://127.0.0.1:2020/v1");
        assert!(r.loopback);
        assert!(
            MoondreamConfig::station("http://[::1]:2020/v1")
                .validate()
                .unwrap()
                .loopback
        );
        assert!(
            !MoondreamConfig::station("http://10.0.0.5:2020/v1")
                .validate()
                .unwrap()
                .loopback
        );

        let mut c = ok.clone();
        c.base_url = "ftp://x/v1".into();
        assert_eq!(field_of(&c), "baseUrl");
        c.base_url = "not a url".into();
        assert_eq!(field_of(&c), "baseUrl");
        c.base_url = "https://user:secret@api.example.com/v1".into();
        assert_eq!(field_of(&c), "baseUrl");
        assert!(!c.validate().unwrap_err().to_string().contains("secret"));
        let mut c = ok.clone();
        c.timeout = Duration::from_millis(10);
        assert_eq!(field_of(&c), "timeoutMs");
        let mut c = ok.clone();
        c.max_retries = 11;
        assert_eq!(field_of(&c), "maxRetries");
        let mut c = ok.clone();
        c.max_image_side = 10;
        assert_eq!(field_of(&c), "maxImageSide");
        let mut c = ok.clone();
        c.api_key = Some("abc\n".into());
        assert_eq!(field_of(&c), "apiKey");
        assert!(!c.validate().unwrap_err().to_string().contains("abc"));
        c.api_key = Some(String::new());
        assert_eq!(field_of(&c), "apiKey");
        // The cloud without any key cannot work; a Station needs none.
        if std::env::var_os(API_KEY_ENV).is_none() {
            let e = MoondreamConfig::default().validate().unwrap_err();
            assert!(e.message().starts_with("apiKey"), "{e}");
            assert!(e.message().contains(API_KEY_ENV), "{e}");
            assert!(MoondreamConfig::station(STATION_URL).validate().is_ok());
        }
    }

    #[test]
    fn key_never_shown() {
        let c = MoondreamConfig::cloud("sk-very-secret");
        assert!(!format!("{c:?}").contains("sk-very-secret"));
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("sk-very-secret"), "{json}");
        assert!(json.contains("\"timeoutMs\":30000"), "{json}");
    }

    #[test]
    fn deserializes_camel_case() {
        let c: MoondreamConfig = serde_json::from_str(
            r#"{"baseUrl":"http://localhost:2020/v1","timeoutMs":5000,"maxRetries":1,"maxImageSide":512}"#,
        )
        .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!((c.max_retries, c.max_image_side), (1, 512));
        assert!(serde_json::from_str::<MoondreamConfig>(r#"{"apikey":"x"}"#).is_err());
    }
}
