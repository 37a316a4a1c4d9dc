//! Egress: which base URLs the operator accepts, and which hosts may receive credentials.
//!
//! [`parse_base_url`] is the one parser of a provider's base URL: the HTTP client uses its result,
//! the allow-list compares the host it normalised, and the CRD's `baseUrl` pattern
//! ([`crate::api::BASE_URL_PATTERN`]) accepts exactly the strings it accepts (unit and property tests check
//! both on the same inputs).
//!
//! An allow-list entry is `host`, `host:port`, `https://host[:port]` (HTTPS only) or
//! `http://host[:port]` (plain HTTP explicitly allowed for that host, for local simulators and tests).

use url::{Host, Url};

use crate::outcome::redact::MASK;
use crate::outcome::{ProviderError, Reason};

/// Longest base URL accepted (the schema's `maxLength`).
pub const MAX_BASE_URL_LEN: usize = 2048;

/// Parse a provider's base URL. Refuses (with `InvalidProviderConfig`, before any request) anything
/// [`crate::api::BASE_URL_PATTERN`] refuses; returns the URL with the host normalised: lower case, no trailing
/// dot, IP addresses in canonical form, path `/`.
pub fn parse_base_url(raw: &str) -> Result<Url, ProviderError> {
    let invalid = |why: &str| {
        ProviderError::permanent(
            Reason::InvalidProviderConfig,
            format!(
                "base URL {} is invalid: {why}; expected http(s)://host[:port] with no path, query, \
                 fragment or user name",
                shown(raw)
            ),
        )
    };
    check_base_url_syntax(raw).map_err(invalid)?;
    let mut url = Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    if let Some(Host::Domain(domain)) = url.host()
        && let Some(stripped) = domain.strip_suffix('.')
    {
        let stripped = stripped.to_string();
        url.set_host(Some(&stripped)).map_err(|e| invalid(&e.to_string()))?;
    }
    let clean = url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !clean {
        return Err(invalid("it has parts other than scheme, host and port"));
    }
    Ok(url)
}

/// The base-URL grammar of [`crate::api::BASE_URL_PATTERN`], checked by hand (regular expressions are not a
/// runtime dependency). Each refusal says what is wrong.
fn check_base_url_syntax(raw: &str) -> Result<(), &'static str> {
    if raw.len() > MAX_BASE_URL_LEN {
        return Err("it is longer than 2048 characters");
    }
    if raw.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err("it contains whitespace, a control character or a non-ASCII character");
    }
    if raw.contains('\\') {
        return Err("it contains a backslash");
    }
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or("it does not start with http:// or https://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("the scheme is not http or https");
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return Err("it has a user name or password (user@ or user:password@)");
    }
    if authority.contains('/') {
        return Err("it has a path (the operator adds the API path itself)");
    }
    if authority.contains(['?', '#']) {
        return Err("it has a query or fragment");
    }
    let (host, port) = split_port(authority);
    if let Some(port) = port
        && !is_port(port)
    {
        return Err("the port is not a number from 1 to 65535 without leading zeros");
    }
    if is_ipv4(host)
        || is_dns_name(host)
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(is_ipv6)
    {
        Ok(())
    } else {
        Err("the host is not a DNS name, an IPv4 address or a bracketed IPv6 address")
    }
}

fn split_port(authority: &str) -> (&str, Option<&str>) {
    let colon = match authority.rfind(']') {
        Some(close) => authority[close..].find(':').map(|i| close + i),
        None => authority.rfind(':'),
    };
    match colon {
        Some(i) => (&authority[..i], Some(&authority[i + 1..])),
        None => (authority, None),
    }
}

fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && !text.starts_with('0')
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p))
}

/// Dotted-quad, each part 0-255 without leading zeros.
fn is_ipv4(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| is_dec_octet(p))
}

fn is_dec_octet(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.parse::<u16>().is_ok_and(|n| n <= 255)
}

fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = host.split('.').collect();
    let Some((last, others)) = labels.split_last() else {
        return false;
    };
    last.starts_with(|c: char| c.is_ascii_alphabetic()) && labels_ok(last) && others.iter().all(|l| labels_ok(l))
}

fn labels_ok(label: &str) -> bool {
    let bytes = label.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && label.get(2..4).is_none_or(|reserved| reserved != "--")
}

/// RFC 3986 `IPv6address`: at most 8 groups of 1-4 hex digits, at most one `::` standing for at
/// least one group, optionally ending in a dotted-quad IPv4 address that counts as two groups.
fn is_ipv6(text: &str) -> bool {
    let (head, tail) = match text.split_once("::") {
        Some((head, tail)) => {
            if tail.contains("::") {
                return false;
            }
            (head, Some(tail))
        }
        None => (text, None),
    };
    let groups = |part: &str, may_end_in_ipv4: bool| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let pieces: Vec<&str> = part.split(':').collect();
        let mut count = 0;
        for (i, piece) in pieces.iter().enumerate() {
            let last = i + 1 == pieces.len();
            if last && may_end_in_ipv4 && is_ipv4(piece) {
                count += 2;
            } else if (1..=4).contains(&piece.len()) && piece.bytes().all(|b| b.is_ascii_hexdigit()) {
                count += 1;
            } else {
                return None;
            }
        }
        Some(count)
    };
    match tail {
        None => groups(head, true) == Some(8),
        Some(tail) => match (groups(head, false), groups(tail, true)) {
            (Some(h), Some(t)) => h + t <= 7,
            _ => false,
        },
    }
}

/// The normalised host the allow-list compares: lower case, no trailing dot, IP addresses in
/// canonical form (IPv6 in brackets).
pub fn normalised_host(url: &Url) -> String {
    match url.host() {
        Some(Host::Domain(domain)) => domain.trim_end_matches('.').to_ascii_lowercase(),
        Some(Host::Ipv4(addr)) => addr.to_string(),
        Some(Host::Ipv6(addr)) => format!("[{addr}]"),
        None => String::new(),
    }
}

/// `raw` quoted with control and non-ASCII characters escaped and cut, for an error message. A user
/// name and password before `@` are masked: they may be a credential.
fn shown(raw: &str) -> String {
    let raw = match raw.rfind('@') {
        Some(at) => {
            let scheme_end = raw.find("://").filter(|s| *s < at).map_or(0, |s| s + 3);
            format!("{}{MASK}@{}", &raw[..scheme_end], &raw[at + 1..])
        }
        None => raw.to_string(),
    };
    let escaped: String = raw.chars().take(200).flat_map(char::escape_default).collect();
    if raw.chars().count() > 200 {
        format!("\"{escaped}…\"")
    } else {
        format!("\"{escaped}\"")
    }
}

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

impl AllowList {
    /// Parse entries (see the module docs for the forms).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidEntry> {
        let entries = entries.into_iter().map(parse_entry).collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    /// Check that `url` may receive credentials. Refuses before any request is sent.
    pub fn check(&self, url: &Url) -> Result<(), ProviderError> {
        let scheme = url.scheme();
        let host = normalised_host(url);
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
    let host = normalised_host(&url);
    if host.is_empty() {
        return Err(invalid("no host"));
    }
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
        let list = AllowList::parse(["cloud.mongodb.com", "app.infisical.com", "eu.infisical.com"]).unwrap();
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

    fn schema_accepts(raw: &str) -> bool {
        static PATTERN: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(crate::api::BASE_URL_PATTERN).unwrap());
        raw.len() <= MAX_BASE_URL_LEN && PATTERN.is_match(raw)
    }

    /// (input, normalised URL when accepted).
    const BASE_URLS: &[(&str, Option<&str>)] = &[
        ("https://cloud.mongodb.com", Some("https://cloud.mongodb.com/")),
        ("https://cloud.mongodb.com/", Some("https://cloud.mongodb.com/")),
        ("http://127.0.0.1:8080", Some("http://127.0.0.1:8080/")),
        ("HTTP://H.", Some("http://h/")),
        ("HTTPS://Cloud.MongoDB.com.:443/", Some("https://cloud.mongodb.com/")),
        ("http://[::1]", Some("http://[::1]/")),
        ("http://[0:0:0:0:0:0:0:1]:9", Some("http://[::1]:9/")),
        ("http://[::FFFF:127.0.0.1]", Some("http://[::ffff:7f00:1]/")),
        ("http://[1:2:3:4:5:6:7::]", Some("http://[1:2:3:4:5:6:7:0]/")),
        ("http://[::2:3:4:5:6:7:8]", Some("http://[0:2:3:4:5:6:7:8]/")),
        (
            "http://sim.revoker-e2e.svc.cluster.local:65535",
            Some("http://sim.revoker-e2e.svc.cluster.local:65535/"),
        ),
        ("http://1a.example", Some("http://1a.example/")),
        ("http://a--b.c-d.e", Some("http://a--b.c-d.e/")),
        ("http://abc-.d", None),
        ("http://xn--zz.com", None),
        ("http://xn--nxasmq6b.com", None),
        ("http://ab--cd.com", None),
        ("http://u@h", None),
        ("http://u:p@h", None),
        ("http://@h", None),
        ("http://h:1\\p", None),
        ("http://h\\@evil", None),
        ("http://h/path", None),
        ("http://h//", None),
        ("http://h/?q", None),
        ("http://h?q", None),
        ("http://h#f", None),
        ("http://h/#", None),
        ("http://h\tx", None),
        ("http://h\n", None),
        ("http://h x", None),
        (" http://h", None),
        ("http://h\u{0}", None),
        ("http://127.1", None),
        ("http://0x7f.1", None),
        ("http://2130706433", None),
        ("http://010.0.0.1", None),
        ("http://256.0.0.1", None),
        ("http://1.2.3.4.5", None),
        ("http://1.2.3.4.", None),
        ("http://[::1", None),
        ("http://[1::2::3]", None),
        ("http://[1:2:3:4:5:6:7:8:9]", None),
        ("http://[1:2:3:4:5:6:7:8::]", None),
        ("http://[::1%25eth0]", None),
        ("http://[fe80::1%eth0]", None),
        ("ftp://h", None),
        ("file:///etc/passwd", None),
        ("javascript:alert(1)", None),
        ("https:/h", None),
        ("https//h", None),
        ("h", None),
        ("", None),
        ("http://", None),
        ("http://:80", None),
        ("http://h:", None),
        ("http://h:0", None),
        ("http://h:080", None),
        ("http://h:65536", None),
        ("http://h:99999", None),
        ("http://h:8a", None),
        ("http://-h", None),
        ("http://h-", None),
        ("http://h..x", None),
        ("http://.", None),
        ("http://h_x", None),
        ("http://h%2ex", None),
        ("http://%68", None),
        ("http://ｈ", None),
        ("http://exаmple.com", None),
        ("http://h\u{200b}", None),
    ];

    #[test]
    fn hostile_base_urls_are_refused_by_the_parser_and_the_crd_pattern_alike() {
        for (raw, expected) in BASE_URLS {
            let parsed = parse_base_url(raw);
            assert_eq!(
                parsed.as_ref().ok().map(Url::as_str),
                *expected,
                "parse_base_url({raw:?}) = {parsed:?}"
            );
            assert_eq!(schema_accepts(raw), expected.is_some(), "CRD pattern on {raw:?}");
            if let Err(err) = parsed {
                assert_eq!(err.reason, Reason::InvalidProviderConfig, "{raw:?}");
                assert!(!err.message.contains(['\n', '\t', '\0']), "{:?}", err.message);
            }
        }
        for (label_len, ok) in [(63, true), (64, false)] {
            let raw = format!("https://{}.example", "a".repeat(label_len));
            assert_eq!(parse_base_url(&raw).is_ok(), ok, "label of {label_len}");
            assert_eq!(schema_accepts(&raw), ok, "label of {label_len}");
        }
        let long = format!("https://{}.example", "a.".repeat(1100));
        assert!(parse_base_url(&long).is_err() && !schema_accepts(&long));
    }

    #[test]
    fn a_password_in_a_refused_base_url_is_not_repeated() {
        let err = parse_base_url("https://admin:hunter2-S3CRET@cloud.mongodb.com").unwrap_err();
        assert!(
            !err.message.contains("hunter2") && !err.message.contains("admin"),
            "{}",
            err.message
        );
        assert!(err.message.contains("user name"), "{}", err.message);
    }

    #[test]
    fn the_allow_list_compares_normalised_hosts() {
        let list = AllowList::parse(["http://Sim.Example.:8080", "http://[0::1]:9"]).unwrap();
        assert!(list.check(&parse_base_url("http://sim.example:8080").unwrap()).is_ok());
        assert!(
            list.check(&parse_base_url("HTTP://SIM.EXAMPLE.:8080/").unwrap())
                .is_ok()
        );
        assert!(list.check(&parse_base_url("http://[::1]:9").unwrap()).is_ok());
        assert!(list.check(&parse_base_url("http://[::2]:9").unwrap()).is_err());
        let list = AllowList::parse(["127.0.0.1"]).unwrap();
        assert!(list.check(&parse_base_url("https://127.0.0.1").unwrap()).is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// On URL-shaped noise the parser never panics, agrees with the CRD pattern, and what it
        /// accepts has no userinfo, path, query or fragment and an already normalised host.
        #[test]
        fn parser_and_pattern_agree_on_noise(
            raw in r"(?:[hH][tT]{2}[pP][sS]?|ftp|)(?::|://|:/)[a-zA-Z0-9.:@/\\?#%\[\]_~ \t-]{0,30}",
        ) {
            let parsed = parse_base_url(&raw);
            proptest::prop_assert_eq!(parsed.is_ok(), schema_accepts(&raw), "{:?}: {:?}", raw, parsed);
            if let Ok(url) = parsed {
                proptest::prop_assert!(url.username().is_empty() && url.password().is_none());
                proptest::prop_assert_eq!(url.path(), "/");
                proptest::prop_assert!(url.query().is_none() && url.fragment().is_none());
                proptest::prop_assert_eq!(url.host_str().map(str::to_string), Some(normalised_host(&url)));
                proptest::prop_assert!(url.scheme() == "http" || url.scheme() == "https");
            }
        }

        /// Well-formed hosts with ports are accepted by both, however they are cased.
        #[test]
        fn parser_and_pattern_agree_on_hosts(
            host in r"[a-zA-Z0-9-]{1,5}(\.[a-zA-Z0-9-]{1,5}){0,3}\.?|([0-9]{1,3}\.){3}[0-9]{1,3}|\[[0-9a-fA-F:.]{2,20}\]",
            port in proptest::option::of(0u32..70000),
        ) {
            let raw = match port { Some(p) => format!("https://{host}:{p}"), None => format!("https://{host}") };
            let parsed = parse_base_url(&raw);
            proptest::prop_assert_eq!(parsed.is_ok(), schema_accepts(&raw), "{:?}: {:?}", raw, parsed);
        }
    }
}
