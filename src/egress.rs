//! Egress allow-list: the operator sends credentials only to hosts it is configured to allow.
//!
//! An entry is `host`, `host:port`, `https://host[:port]` (HTTPS only) or `http://host[:port]`
//! (plain HTTP explicitly allowed for that host, for local simulators and tests).

use url::Url;

use crate::outcome::{ProviderError, Reason};

/// Hosts allowed by default: the official provider API hosts, as each provider registers them.
pub const DEFAULT_ALLOWED_HOSTS: [&str; crate::providers::DEFAULT_HOST_COUNT] = crate::providers::DEFAULT_HOSTS;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    host: String,
    port: Option<u16>,
    plain_http: bool,
}

/// The configured allow-list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

/// An allow-list entry that cannot be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid --allowed-host entry {entry:?}: {why}")]
pub struct InvalidEntry {
    entry: String,
    why: String,
}

impl Default for AllowList {
    fn default() -> Self {
        // The constant hosts parse (unit test defaults_allow_official_hosts_over_https_only).
        Self::parse(DEFAULT_ALLOWED_HOSTS.iter().copied()).expect("default hosts parse")
    }
}

impl AllowList {
    /// Parse entries (see the module docs for the forms).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidEntry> {
        let entries = entries.into_iter().map(parse_entry).collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    /// Check that `url` may receive credentials. Refuses before any request is sent.
    pub fn check(&self, url: &Url) -> Result<(), ProviderError> {
        let scheme = url.scheme();
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = url.port_or_known_default();
        let matches_host = |e: &&Entry| e.host == host && e.port.is_none_or(|p| Some(p) == port);
        let allowed = match scheme {
            "https" => self.entries.iter().any(|e| matches_host(&e)),
            "http" => self.entries.iter().filter(|e| e.plain_http).any(|e| matches_host(&e)),
            _ => false,
        };
        if allowed {
            return Ok(());
        }
        let hint = if scheme == "http" {
            format!("plain HTTP is refused unless the host is allowed as http://{host}")
        } else {
            format!("start the operator with --allowed-host {host} (Helm value egress.allowedHosts)")
        };
        Err(ProviderError::waiting(
            Reason::HostNotAllowed,
            format!("{scheme}://{host} is not on the operator's egress allow-list; no request was sent; {hint}"),
        ))
    }
}

fn parse_entry(raw: &str) -> Result<Entry, InvalidEntry> {
    let invalid = |why: &str| InvalidEntry {
        entry: raw.to_string(),
        why: why.to_string(),
    };
    let trimmed = raw.trim();
    let (plain_http, rest) = if let Some(rest) = trimmed.strip_prefix("http://") {
        (true, rest)
    } else {
        (false, trimmed.strip_prefix("https://").unwrap_or(trimmed))
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') || rest.contains('@') {
        return Err(invalid("expected [http://|https://]host[:port]"));
    }
    let url = Url::parse(&format!("https://{rest}")).map_err(|e| invalid(&e.to_string()))?;
    let host = url.host_str().ok_or_else(|| invalid("no host"))?.to_ascii_lowercase();
    Ok(Entry {
        host,
        port: url.port(),
        plain_http,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn defaults_allow_official_hosts_over_https_only() {
        let list = AllowList::default();
        assert!(list.check(&url("https://cloud.mongodb.com/api/atlas/v2/x")).is_ok());
        assert!(list.check(&url("https://app.infisical.com/api/v1/auth")).is_ok());
        let err = list.check(&url("http://cloud.mongodb.com/api")).unwrap_err();
        assert_eq!(err.reason, Reason::HostNotAllowed);
        assert!(err.message.contains("plain HTTP"));
        let err = list.check(&url("https://evil.example.com/api")).unwrap_err();
        assert!(
            err.message.contains("--allowed-host evil.example.com"),
            "{}",
            err.message
        );
    }

    #[test]
    fn plain_http_needs_an_explicit_http_entry_and_matching_port() {
        let list = AllowList::parse(["http://127.0.0.1:8080", "onezone.example.org"]).unwrap();
        assert!(list.check(&url("http://127.0.0.1:8080/x")).is_ok());
        assert!(list.check(&url("https://127.0.0.1:8080/x")).is_ok());
        assert!(list.check(&url("http://127.0.0.1:9090/x")).is_err());
        assert!(list.check(&url("https://onezone.example.org/api/v3/onezone")).is_ok());
        assert!(list.check(&url("http://onezone.example.org/api/v3/onezone")).is_err());
        assert!(list.check(&url("https://sub.onezone.example.org/")).is_err());
    }

    #[test]
    fn malformed_entries_are_rejected() {
        assert!(AllowList::parse(["https://host/path"]).is_err());
        assert!(AllowList::parse([""]).is_err());
        assert!(AllowList::parse(["user@host"]).is_err());
    }
}
