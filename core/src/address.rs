//! Camera addresses: the URL camkit connects to and the credentials, kept apart.
//!
//! Credentials never live in the URL camkit keeps: a `rtsp://user:pass@host/...` URL is
//! split into a bare URL and [`retina::client::Credentials`], and only the bare URL is ever
//! shown (status, logs, errors). The `username` / `password` fields of a
//! [`CameraConfig`](crate::CameraConfig) are taken literally, so passwords with `@ : / # %`
//! or spaces need no escaping there.
//!
//! The URL is cut up by hand rather than by the `url` crate: a password typed into a URL
//! often holds unencoded `@ / #`, which a standard parser reads as the end of the userinfo
//! or the start of the path or fragment, and would then put part of the password in the
//! host or path that camkit shows. Here the userinfo ends at the *last* `@`; the pieces
//! left are checked and joined into a URL that `url` then parses.

use url::Url;

use crate::error::{Error, Result};

/// Default RTSP port.
pub const DEFAULT_PORT: u16 = 554;

/// What names a camera, as the caller gave it: either `url`, or `host` with `port` and
/// `path`; `username` and `password` taken literally (they win over any in the URL).
pub(crate) struct AddressParts<'a> {
    pub url: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<u32>,
    pub path: Option<&'a str>,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
}

impl AddressParts<'_> {
    /// Checks the parts and builds the source camkit connects to. Errors name the field;
    /// none holds the password.
    pub fn resolve(&self) -> Result<Source> {
        if let Some(u) = self.username {
            check_text("username", u, 256)?;
        }
        if let Some(p) = self.password {
            if p.len() > 256 || p.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
                return Err(Error::invalid(
                    "password",
                    "must be at most 256 bytes without line breaks or NUL",
                ));
            }
        }
        let (url, url_creds) = match (self.url, self.host) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid("url", "give either url or host, not both"));
            }
            (None, None) => return Err(Error::invalid("host", "missing: give host or url")),
            (Some(u), None) => parse_rtsp_url(u)?,
            (None, Some(h)) => {
                if self.port.is_some_and(|p| p == 0 || p > 65535) {
                    return Err(Error::invalid("port", "must be between 1 and 65535"));
                }
                let port = self.port.unwrap_or(DEFAULT_PORT as u32) as u16;
                let path = self.path.unwrap_or("/");
                (build_url(h, port, path)?, None)
            }
        };
        if self.url.is_some() && (self.port.is_some() || self.path.is_some()) {
            return Err(Error::invalid(
                "url",
                "port and path belong in the url when url is given",
            ));
        }
        let username = self
            .username
            .map(str::to_owned)
            .or_else(|| url_creds.as_ref().map(|c| c.0.clone()));
        let password = self
            .password
            .map(str::to_owned)
            .or_else(|| url_creds.as_ref().map(|c| c.1.clone()));
        let credentials = match (username, password) {
            (None, None) => None,
            (u, p) => Some(retina::client::Credentials {
                username: u.unwrap_or_default(),
                password: p.unwrap_or_default(),
            }),
        };
        Ok(Source { url, credentials })
    }
}

/// A validated camera address: a URL without credentials, and the credentials apart.
#[derive(Clone)]
pub struct Source {
    url: Url,
    credentials: Option<retina::client::Credentials>,
}

impl Source {
    /// The URL camkit connects to; it never carries credentials, so it may be shown.
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub(crate) fn credentials(&self) -> Option<&retina::client::Credentials> {
        self.credentials.as_ref()
    }

    /// The username, if any (never the password).
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    /// The source of this camera's sub-stream, from the config's `subStream`: a path
    /// (starting with `/`) on this camera's host and port, with this camera's credentials;
    /// or a full `rtsp://` URL, whose own `user:pass@` (moved out, as for `url`) is used
    /// when it has one, else this camera's credentials when it names the same host and
    /// port, else none (credentials are never sent to another server). Errors name
    /// `subStream` and never hold a password.
    pub(crate) fn sub_stream(&self, spec: &str) -> Result<Source> {
        let field = "subStream";
        let rename = |e: Error| Error::invalid(field, e.message());
        let spec = spec.trim();
        let (url, own) = if spec.starts_with('/') {
            let host = self.url.host_str().unwrap_or_default();
            let port = self.url.port().unwrap_or(DEFAULT_PORT);
            (build_url(host, port, spec).map_err(rename)?, None)
        } else if spec.len() > 7 && spec[..7].eq_ignore_ascii_case("rtsp://") {
            parse_rtsp_url(spec).map_err(rename)?
        } else {
            return Err(Error::invalid(
                field,
                "must be a path starting with '/' (on the main stream's host and port) or an rtsp:// URL",
            ));
        };
        if url == self.url {
            return Err(Error::invalid(
                field,
                "names the main stream itself; give the camera's second stream",
            ));
        }
        let same_server = url.host_str() == self.url.host_str() && url.port() == self.url.port();
        let credentials = match own {
            Some((username, password)) => Some(retina::client::Credentials { username, password }),
            None if same_server => self.credentials.clone(),
            None => None,
        };
        Ok(Source { url, credentials })
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("url", &self.url.as_str())
            .field("username", &self.username())
            .finish_non_exhaustive()
    }
}

fn check_text(field: &str, v: &str, max: usize) -> Result<()> {
    if v.len() > max {
        return Err(Error::invalid(
            field,
            format!("at most {max} bytes allowed"),
        ));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_host(host: &str) -> Result<()> {
    if host.is_empty() {
        return Err(Error::invalid("host", "must not be empty"));
    }
    if host.len() > 253 {
        return Err(Error::invalid("host", "longer than 253 bytes"));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| Error::invalid("host", "is not a valid bracketed IPv6 address"));
    }
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-' || *c == '_'))
    {
        let what = match c {
            ' ' => "a space".to_owned(),
            c if c.is_control() => "a control character".to_owned(),
            c => format!("{c:?}"),
        };
        return Err(Error::invalid(
            "host",
            format!(
                "contains {what}; give only a host name or IP address (port and path are separate fields)"
            ),
        ));
    }
    Ok(())
}

fn build_url(host: &str, port: u16, path: &str) -> Result<Url> {
    check_host(host)?;
    if !path.starts_with('/') {
        return Err(Error::invalid("path", "must start with '/'"));
    }
    check_text("path", path, 1024)?;
    if path.contains(' ') {
        return Err(Error::invalid("path", "must not contain spaces"));
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Url::parse(&format!("rtsp://{host}:{port}{path}"))
        .map_err(|e| Error::invalid("path", format!("does not make a valid URL: {e}")))
}

/// Parses a user-supplied `rtsp://` URL, moving any `user:pass@` out of it.
///
/// The userinfo ends at the last `@` before the host, so unencoded `@ : /` in a
/// password still parse; valid `%XX` escapes in it are decoded.
fn parse_rtsp_url(raw: &str) -> Result<(Url, Option<(String, String)>)> {
    let raw = raw.trim();
    if raw.chars().any(|c| c.is_control()) {
        return Err(Error::invalid("url", "must not contain control characters"));
    }
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(Error::invalid(
            "url",
            "must start with rtsp:// (e.g. rtsp://192.168.1.20:554/stream1)",
        ));
    };
    if !scheme.eq_ignore_ascii_case("rtsp") {
        return Err(Error::invalid(
            "url",
            format!(
                "scheme {:?} is not supported; use rtsp://",
                scheme.to_ascii_lowercase()
            ),
        ));
    }
    // The host part is everything after the last '@' up to the next '/'.
    let (userinfo, hostpath) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (hostport, path) = match hostpath.find(['/', '?']) {
        Some(i) => (&hostpath[..i], &hostpath[i..]),
        None => (hostpath, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    let (host, port) = split_host_port(hostport)?;
    let url = build_url(host, port, &path).map_err(|e| {
        // Errors from the pieces name "host"/"path"; here the caller gave a URL.
        Error::invalid("url", e.message())
    })?;
    let creds = userinfo.map(|ui| {
        let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
        (percent_decode_lenient(u), percent_decode_lenient(p))
    });
    Ok((url, creds))
}

fn split_host_port(hostport: &str) -> Result<(&str, u16)> {
    if hostport.is_empty() {
        return Err(Error::invalid("url", "has no host"));
    }
    let (host, port) = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(end) => {
                let host = &hostport[..=end];
                let rest = &hostport[end + 1..];
                (host, rest.strip_prefix(':'))
            }
            None => return Err(Error::invalid("url", "unclosed '[' in IPv6 host")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => n as u16,
            _ => return Err(Error::invalid("url", "port must be between 1 and 65535")),
        },
    };
    Ok((host, port))
}

/// Decodes `%XX` escapes that are valid; leaves a lone `%` as it is.
fn percent_decode_lenient(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// Removes any `user:pass@` from a URL-like string, for display. Works on strings that do
/// not parse, so nothing a caller typed can leak through an error message.
pub fn redact_url_str(s: &str) -> String {
    match s.split_once("://") {
        Some((scheme, rest)) => {
            // The last '@' anywhere ends any userinfo (it may itself contain '/').
            match rest.rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => s.to_owned(),
            }
        }
        None => match s.rfind('@') {
            Some(at) => s[at + 1..].to_owned(),
            None => s.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::config::CameraConfig;

    use super::*;

    #[test]
    fn host_port_path_build_a_bare_url() {
        let mut c = CameraConfig::from_host("cam1", "192.168.1.20").credentials("admin", "p@ss");
        c.path = Some("/Streaming/Channels/101".into());
        let s = c.validate().unwrap();
        assert_eq!(
            s.url().as_str(),
            "rtsp://192.168.1.20:554/Streaming/Channels/101"
        );
        assert_eq!(s.username(), Some("admin"));
        assert_eq!(s.credentials().unwrap().password, "p@ss");
    }

    #[test]
    fn special_character_passwords_in_fields_are_literal() {
        for pw in [
            "p@ss",
            "a:b",
            "x/y",
            "hash#tag",
            "50%off",
            "two words",
            "%41",
            "@:/#% ",
        ] {
            let s = CameraConfig::from_host("c", "cam.local")
                .credentials("u", pw)
                .validate()
                .unwrap();
            assert_eq!(s.credentials().unwrap().password, pw);
            assert!(!s.url().as_str().contains(pw.trim()));
        }
    }

    #[test]
    fn credentials_in_url_are_moved_out() {
        let s = CameraConfig::from_url("c", "rtsp://admin:s%40cret%3A1@10.0.0.5:8554/live?ch=1")
            .validate()
            .unwrap();
        assert_eq!(s.url().as_str(), "rtsp://10.0.0.5:8554/live?ch=1");
        let c = s.credentials().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("admin", "s@cret:1")
        );
    }

    #[test]
    fn unencoded_specials_in_url_password_parse_by_last_at() {
        let s = CameraConfig::from_url("c", "rtsp://admin:p@ss/w#rd 1@cam.local/stream1")
            .validate()
            .unwrap();
        assert_eq!(s.url().as_str(), "rtsp://cam.local:554/stream1");
        assert_eq!(s.credentials().unwrap().password, "p@ss/w#rd 1");
        assert!(!format!("{s:?}").contains("w#rd"));
    }

    #[test]
    fn fields_override_url_credentials() {
        let s = CameraConfig::from_url("c", "rtsp://a:b@h/p")
            .credentials("x", "y")
            .validate()
            .unwrap();
        assert_eq!(s.credentials().unwrap().username, "x");
        assert_eq!(s.credentials().unwrap().password, "y");
    }

    #[test]
    fn ipv6_hosts() {
        let s = CameraConfig::from_host("c", "::1").validate().unwrap();
        assert_eq!(s.url().as_str(), "rtsp://[::1]:554/");
        let s = CameraConfig::from_url("c", "rtsp://[::1]:8554/x")
            .validate()
            .unwrap();
        assert_eq!(s.url().port(), Some(8554));
    }

    #[test]
    fn sub_streams_share_or_keep_their_credentials() {
        let main = CameraConfig::from_url("c", "rtsp://admin:main%40pw@10.0.0.5:8554/main")
            .validate()
            .unwrap();
        // A path: same server, the main stream's credentials.
        let sub = main.sub_stream("/sub?ch=2").unwrap();
        assert_eq!(sub.url().as_str(), "rtsp://10.0.0.5:8554/sub?ch=2");
        assert_eq!(sub.credentials().unwrap().password, "main@pw");
        // A URL with credentials of its own: those, moved out of the URL.
        let sub = main
            .sub_stream("rtsp://viewer:s%3Ab@10.0.0.5:8554/sub")
            .unwrap();
        assert_eq!(sub.url().as_str(), "rtsp://10.0.0.5:8554/sub");
        assert_eq!(sub.credentials().unwrap().username, "viewer");
        assert_eq!(sub.credentials().unwrap().password, "s:b");
        assert!(!format!("{sub:?}").contains("s:b"));
        // A URL without: the main's on the same server, none elsewhere.
        let sub = main.sub_stream("rtsp://10.0.0.5:8554/sub").unwrap();
        assert_eq!(sub.credentials().unwrap().username, "admin");
        let sub = main.sub_stream("rtsp://10.0.0.6:8554/sub").unwrap();
        assert!(sub.credentials().is_none());
        for bad in [
            "sub",
            "http://h/x",
            "rtsp://u:hunter2@bad host/x",
            "/has space",
            "rtsp://10.0.0.5:8554/main",
        ] {
            let e = main.sub_stream(bad).unwrap_err();
            assert_eq!(e.field(), Some("subStream"), "{bad}: {e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn redact_strips_userinfo() {
        assert_eq!(redact_url_str("rtsp://u:p@h/x"), "rtsp://h/x");
        assert_eq!(redact_url_str("rtsp://u:p/q@h/x"), "rtsp://h/x");
        assert_eq!(redact_url_str("rtsp://h/x"), "rtsp://h/x");
    }
}
