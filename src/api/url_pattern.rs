//! The grammar of a provider's `baseUrl`, as one regular expression the CRD schema carries; the
//! operator's parser (`egress::parse_base_url`) refuses exactly what it refuses (tested there).

macro_rules! dec_octet {
    () => {
        "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    };
}
macro_rules! ipv4 {
    () => {
        concat!(dec_octet!(), "(\\.", dec_octet!(), "){3}")
    };
}
macro_rules! h16 {
    () => {
        "[0-9A-Fa-f]{1,4}"
    };
}
macro_rules! ls32 {
    () => {
        concat!("(", h16!(), ":", h16!(), "|", ipv4!(), ")")
    };
}
/// RFC 3986 `IPv6address`.
macro_rules! ipv6 {
    () => {
        concat!(
            "(",
            "(",
            h16!(),
            ":){6}",
            ls32!(),
            "|::(",
            h16!(),
            ":){5}",
            ls32!(),
            "|(",
            h16!(),
            ")?::(",
            h16!(),
            ":){4}",
            ls32!(),
            "|((",
            h16!(),
            ":){0,1}",
            h16!(),
            ")?::(",
            h16!(),
            ":){3}",
            ls32!(),
            "|((",
            h16!(),
            ":){0,2}",
            h16!(),
            ")?::(",
            h16!(),
            ":){2}",
            ls32!(),
            "|((",
            h16!(),
            ":){0,3}",
            h16!(),
            ")?::",
            h16!(),
            ":",
            ls32!(),
            "|((",
            h16!(),
            ":){0,4}",
            h16!(),
            ")?::",
            ls32!(),
            "|((",
            h16!(),
            ":){0,5}",
            h16!(),
            ")?::",
            h16!(),
            "|((",
            h16!(),
            ":){0,6}",
            h16!(),
            ")?::",
            ")"
        )
    };
}
/// One LDH label of at most 63 characters whose first character is in `$first`, and without
/// hyphens in both the third and fourth position: such labels are reserved for IDNA (`xn--`), and
/// the URL parser would decode them (internationalised host names are not supported).
macro_rules! label {
    ($first:literal) => {
        concat!(
            "(",
            $first,
            "([A-Za-z0-9-]?[A-Za-z0-9])?",
            "|",
            $first,
            "[A-Za-z0-9-]{2}[A-Za-z0-9]([A-Za-z0-9-]{0,58}[A-Za-z0-9])?",
            "|",
            $first,
            "[A-Za-z0-9-][A-Za-z0-9]-[A-Za-z0-9-]{0,58}[A-Za-z0-9]",
            ")"
        )
    };
}
/// A DNS name: labels, the last one starting with a letter (so that it is never read as an IPv4
/// number, e.g. `127.1`), and an optional trailing dot.
macro_rules! dns_name {
    () => {
        concat!("(", label!("[A-Za-z0-9]"), "\\.)*", label!("[A-Za-z]"), "\\.?")
    };
}
macro_rules! port {
    () => {
        "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
    };
}

/// The CRD pattern of `baseUrl`: `http` or `https` (any case), a DNS name, a dotted-quad IPv4
/// address or a bracketed IPv6 address, an optional port 1-65535 without leading zeros, and at most
/// one `/`. Nothing else: no userinfo, path, query, fragment, backslash, whitespace or percent sign.
pub const BASE_URL_PATTERN: &str = concat!(
    "^[hH][tT][tT][pP][sS]?://(",
    dns_name!(),
    "|",
    ipv4!(),
    "|\\[",
    ipv6!(),
    "\\])(:",
    port!(),
    ")?/?$"
);
