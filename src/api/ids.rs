//! The rules for every identifier a manifest names, in one place: the CRD schema uses the patterns
//! (`#[schemars(regex(pattern = ...))]`), and the controller checks values the schema cannot see
//! (read from Secrets or ConfigMaps, or objects stored before the schema was tightened) with
//! [`validate_id`], so both apply the same rule.
//!
//! Provider ids end up in request paths, so no kind admits whitespace, control characters,
//! `/ \ % ? #`, or a value that is only dots.
//!
//! Values read from a Secret: `kubectl create secret --from-file` keeps the file's final newline,
//! so exactly one trailing `\n` (or `\r\n`) is removed; any other whitespace or control character
//! is an error ([`id_from_secret`], [`secret_value`]).

/// A MongoDB Atlas object id (federation, identity provider, project): 24 lower-case hex digits.
pub const ATLAS_ID_PATTERN: &str = r"^[a-f0-9]{24}$";
/// An Infisical machine identity id or client secret id: a UUID (Infisical stores both as
/// Postgres `uuid`).
pub const UUID_PATTERN: &str = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
/// A Onezone user or named token id. The Onezone spec sets no pattern (its ids are 32 hex digits);
/// this is the URL-safe alphabet without `.` and `~`.
pub const ONEZONE_ID_PATTERN: &str = r"^[A-Za-z0-9_-]{1,128}$";
/// A Kubernetes object name (DNS-1123 subdomain).
pub const OBJECT_NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A key of a Secret's data: Kubernetes' own rule (`[-._a-zA-Z0-9]+`, not `.`, `..` or `..*`).
pub const SECRET_KEY_PATTERN: &str = r"^(\.[-_a-zA-Z0-9][-._a-zA-Z0-9]*|[-_a-zA-Z0-9][-._a-zA-Z0-9]*)$";
/// An Atlas API version (the date in `application/vnd.atlas.<date>+json`).
pub const ATLAS_API_VERSION_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$";

/// Longest Onezone id accepted.
pub const ONEZONE_ID_MAX: usize = 128;
/// Longest Kubernetes object name or Secret key.
pub const OBJECT_NAME_MAX: usize = 253;

/// The kinds of identifier, each with its own alphabet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// [`ATLAS_ID_PATTERN`].
    AtlasId,
    /// [`UUID_PATTERN`].
    Uuid,
    /// [`ONEZONE_ID_PATTERN`].
    OnezoneId,
    /// [`OBJECT_NAME_PATTERN`], at most [`OBJECT_NAME_MAX`] characters.
    ObjectName,
    /// [`SECRET_KEY_PATTERN`], at most [`OBJECT_NAME_MAX`] characters.
    SecretKey,
    /// [`ATLAS_API_VERSION_PATTERN`].
    AtlasApiVersion,
}

impl IdKind {
    /// Every kind.
    pub const ALL: [IdKind; 6] = [
        IdKind::AtlasId,
        IdKind::Uuid,
        IdKind::OnezoneId,
        IdKind::ObjectName,
        IdKind::SecretKey,
        IdKind::AtlasApiVersion,
    ];

    /// The regular expression the CRD schema uses for this kind.
    pub const fn pattern(self) -> &'static str {
        match self {
            IdKind::AtlasId => ATLAS_ID_PATTERN,
            IdKind::Uuid => UUID_PATTERN,
            IdKind::OnezoneId => ONEZONE_ID_PATTERN,
            IdKind::ObjectName => OBJECT_NAME_PATTERN,
            IdKind::SecretKey => SECRET_KEY_PATTERN,
            IdKind::AtlasApiVersion => ATLAS_API_VERSION_PATTERN,
        }
    }

    /// The longest accepted value, in bytes (the schema's `maxLength`).
    pub const fn max_len(self) -> usize {
        match self {
            IdKind::AtlasId => 24,
            IdKind::Uuid => 36,
            IdKind::OnezoneId => ONEZONE_ID_MAX,
            IdKind::ObjectName | IdKind::SecretKey => OBJECT_NAME_MAX,
            IdKind::AtlasApiVersion => 10,
        }
    }

    /// What a valid value looks like, for error messages.
    pub const fn expected(self) -> &'static str {
        match self {
            IdKind::AtlasId => "24 lower-case hex digits",
            IdKind::Uuid => "a UUID (8-4-4-4-12 hex digits)",
            IdKind::OnezoneId => "1 to 128 characters of A-Z a-z 0-9 _ -",
            IdKind::ObjectName => "a Kubernetes object name (lower-case DNS subdomain, at most 253 characters)",
            IdKind::SecretKey => "a Secret key (A-Z a-z 0-9 - _ ., not . or .., at most 253 characters)",
            IdKind::AtlasApiVersion => "a date like 2023-01-01",
        }
    }

    /// Whether `value` matches [`IdKind::pattern`] and [`IdKind::max_len`].
    pub fn accepts(self, value: &str) -> bool {
        if value.is_empty() || value.len() > self.max_len() {
            return false;
        }
        let bytes = value.as_bytes();
        match self {
            IdKind::AtlasId => bytes.len() == 24 && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            IdKind::Uuid => is_uuid(bytes),
            IdKind::OnezoneId => bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')),
            IdKind::ObjectName => value.split('.').all(is_dns_label_body),
            IdKind::SecretKey => is_secret_key(bytes),
            IdKind::AtlasApiVersion => {
                bytes.len() == 10
                    && bytes.iter().enumerate().all(|(i, b)| match i {
                        4 | 7 => *b == b'-',
                        _ => b.is_ascii_digit(),
                    })
            }
        }
    }
}

fn is_uuid(bytes: &[u8]) -> bool {
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// One dot-separated part of a DNS-1123 subdomain (no 63-character limit: Kubernetes has none).
fn is_dns_label_body(label: &str) -> bool {
    let bytes = label.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-'),
        _ => false,
    }
}

fn is_secret_key(bytes: &[u8]) -> bool {
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let starts_with_dots = bytes.first() == Some(&b'.') && bytes.get(1).is_none_or(|b| *b == b'.');
    !starts_with_dots && bytes.iter().all(allowed)
}

/// An identifier that breaks its kind's rule. The message names the field and shows the value
/// with control characters escaped, cut to a length.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} is {shown}, which is not {expected}")]
pub struct InvalidId {
    /// The field, as a path (e.g. `spec.infisical.identityId`).
    pub field: String,
    /// Which rule was broken.
    pub kind: IdKind,
    shown: String,
    expected: &'static str,
}

/// Check `value` against `kind`'s rule; the error names `field`.
pub fn validate_id(field: &str, kind: IdKind, value: &str) -> Result<(), InvalidId> {
    if kind.accepts(value) {
        return Ok(());
    }
    Err(InvalidId {
        field: field.to_string(),
        kind,
        shown: shown(value),
        expected: kind.expected(),
    })
}

/// An id read from a Secret or ConfigMap: one trailing newline removed, then [`validate_id`].
pub fn id_from_secret<'a>(field: &str, kind: IdKind, raw: &'a str) -> Result<&'a str, InvalidId> {
    let value = strip_one_newline(raw);
    validate_id(field, kind, value)?;
    Ok(value)
}

/// A credential read from a Secret that breaks the whitespace rule. Never shows the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecretValue {
    /// Nothing left after removing the trailing newline.
    #[error("{0} is empty")]
    Empty(String),
    /// Whitespace or a control character other than one trailing newline.
    #[error(
        "{0} contains whitespace or a control character (only one trailing newline is removed); \
         rewrite the Secret without it"
    )]
    Whitespace(String),
}

/// A credential read from a Secret key (`field` names it, e.g. `Secret ns/name key token`): one
/// trailing `\n` or `\r\n` is removed; anything else that is whitespace or a control character is an
/// error, since no provider credential contains one.
pub fn secret_value<'a>(field: &str, raw: &'a str) -> Result<&'a str, InvalidSecretValue> {
    let value = strip_one_newline(raw);
    if value.is_empty() {
        return Err(InvalidSecretValue::Empty(field.to_string()));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidSecretValue::Whitespace(field.to_string()));
    }
    Ok(value)
}

fn strip_one_newline(raw: &str) -> &str {
    raw.strip_suffix("\r\n")
        .or_else(|| raw.strip_suffix('\n'))
        .unwrap_or(raw)
}

/// The value quoted with every control character, quote and non-ASCII character escaped, cut to 80
/// characters, so that an error message stays one readable line.
fn shown(value: &str) -> String {
    const MAX: usize = 80;
    let mut out = String::from("\"");
    for (i, c) in value.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
            out.push(c);
        } else {
            out.push_str(&c.escape_default().to_string());
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values that must never be accepted by any kind.
    const HOSTILE: &[&str] = &[
        "",
        ".",
        "..",
        "a/b",
        "a\\b",
        "a%2fb",
        "%2e%2e",
        "a?b",
        "a#b",
        "a b",
        "a\tb",
        "a\nb",
        "a\rb",
        "a\u{0}b",
        "a\u{1b}[31mb",
        "ａｂｃ",
        "аbc",
        "abc\u{200b}",
        "../../x",
    ];

    fn regex_of(kind: IdKind) -> regex::Regex {
        regex::Regex::new(kind.pattern()).unwrap()
    }

    fn schema_accepts(kind: IdKind, value: &str) -> bool {
        value.chars().count() <= kind.max_len() && regex_of(kind).is_match(value)
    }

    #[test]
    fn hostile_values_are_rejected_by_every_kind_with_the_field_named() {
        for kind in IdKind::ALL {
            for value in HOSTILE {
                let err = validate_id("spec.x.someId", kind, value).unwrap_err();
                let text = err.to_string();
                assert!(text.starts_with("spec.x.someId is "), "{text}");
                assert!(
                    !text.contains('\n') && !text.contains('\t') && !text.contains('\u{1b}'),
                    "{text:?}"
                );
                assert!(!schema_accepts(kind, value), "{kind:?} schema accepts {value:?}");
            }
        }
    }

    #[test]
    fn documented_ids_are_accepted() {
        let good = [
            (IdKind::AtlasId, "32b6e34b3d91647abb20e7b9"),
            (IdKind::Uuid, "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a"),
            (IdKind::Uuid, "8D5F6A1E-1C2B-4D3E-8F9A-0B1C2D3E4F5A"),
            (IdKind::OnezoneId, "c26bab23d12f7389c3c311caf9c15902"),
            (IdKind::OnezoneId, "user-1"),
            (IdKind::ObjectName, "shared-onezone"),
            (IdKind::ObjectName, "a.b-c.d"),
            (IdKind::SecretKey, "clientSecret"),
            (IdKind::SecretKey, ".dotfile"),
            (IdKind::SecretKey, "tls.crt"),
            (IdKind::AtlasApiVersion, "2023-11-15"),
        ];
        for (kind, value) in good {
            assert_eq!(validate_id("f", kind, value), Ok(()), "{kind:?} {value}");
            assert!(schema_accepts(kind, value), "{kind:?} schema rejects {value}");
        }
    }

    #[test]
    fn near_misses_are_rejected() {
        let bad = [
            (IdKind::AtlasId, "32B6E34B3D91647ABB20E7B9"),
            (IdKind::AtlasId, "32b6e34b3d91647abb20e7"),
            (IdKind::Uuid, "8d5f6a1e1c2b4d3e8f9a0b1c2d3e4f5a"),
            (IdKind::Uuid, "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5g"),
            (IdKind::Uuid, "x"),
            (IdKind::OnezoneId, "a.b"),
            (IdKind::OnezoneId, "a~b"),
            (IdKind::ObjectName, "Upper"),
            (IdKind::ObjectName, "-lead"),
            (IdKind::ObjectName, "a..b"),
            (IdKind::SecretKey, "..x"),
            (IdKind::AtlasApiVersion, "2023-1-15"),
        ];
        for (kind, value) in bad {
            assert!(validate_id("f", kind, value).is_err(), "{kind:?} accepts {value}");
            assert!(!schema_accepts(kind, value), "{kind:?} schema accepts {value}");
        }
        assert!(!IdKind::OnezoneId.accepts(&"a".repeat(129)));
    }

    #[test]
    fn a_secret_value_loses_one_trailing_newline_and_nothing_else() {
        assert_eq!(id_from_secret("f", IdKind::OnezoneId, "abc\n"), Ok("abc"));
        assert_eq!(id_from_secret("f", IdKind::OnezoneId, "abc\r\n"), Ok("abc"));
        assert!(id_from_secret("f", IdKind::OnezoneId, "abc\n\n").is_err());
        assert!(id_from_secret("f", IdKind::OnezoneId, " abc").is_err());
        assert_eq!(secret_value("key token", "tok3n\n"), Ok("tok3n"));
        let err = secret_value("key token", "tok en-S3CRET\n").unwrap_err();
        assert!(err.to_string().starts_with("key token contains whitespace"), "{err}");
        assert!(!err.to_string().contains("S3CRET"));
        assert!(matches!(secret_value("k", "\n"), Err(InvalidSecretValue::Empty(_))));
        assert!(secret_value("k", "a\tb").is_err());
        assert!(secret_value("k", "tok\n\n").is_err());
    }

    #[test]
    fn the_shown_value_is_escaped_and_clipped() {
        let err = validate_id("f", IdKind::Uuid, &format!("a\nb\u{1b}[0m\"{}", "x".repeat(200))).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(r#""a\nb\u{1b}[0m\"xx"#), "{text}");
        assert!(text.contains('…') && text.len() < 200, "{text}");
    }

    /// The schema of `kind`'s CRD at `path` (dot-separated property names below `spec`; `*` is a
    /// map's value schema).
    fn schema_at(kind: &str, path: &str) -> serde_json::Value {
        let crd = crate::api::all_crds()
            .into_iter()
            .find(|c| c.spec.names.kind == kind)
            .unwrap();
        let value = serde_json::to_value(&crd).unwrap();
        let mut schema = value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone();
        for part in path.split('.') {
            schema = match part {
                "*" => schema["additionalProperties"].clone(),
                _ => schema["properties"][part].clone(),
            };
        }
        schema
    }

    #[test]
    fn every_id_field_of_every_crd_carries_its_kinds_pattern() {
        let mut fields: Vec<(&str, String, IdKind)> = vec![
            ("JwksRevocation", "atlas.federationSettingsId".into(), IdKind::AtlasId),
            ("JwksRevocation", "atlas.identityProviderId".into(), IdKind::AtlasId),
            ("AuthMethodRevocation", "atlas.groupId".into(), IdKind::AtlasId),
            ("AuthMethodRevocation", "infisical.identityId".into(), IdKind::Uuid),
            ("TokenRevocation", "infisical.identityId".into(), IdKind::Uuid),
            ("TokenRevocation", "infisical.clientSecretId".into(), IdKind::Uuid),
            (
                "TokenRevocation",
                "infisical.tokenSecretRef.name".into(),
                IdKind::ObjectName,
            ),
            (
                "TokenRevocation",
                "infisical.tokenSecretRef.key".into(),
                IdKind::SecretKey,
            ),
            ("TokenRevocation", "onezone.userId".into(), IdKind::OnezoneId),
            ("TokenRevocation", "onezone.tokenId".into(), IdKind::OnezoneId),
        ];
        for kind in ["JwksRevocation", "AuthMethodRevocation", "TokenRevocation"] {
            fields.push((kind, "providerRef.name".into(), IdKind::ObjectName));
        }
        for kind in ["RevocationProvider", "ClusterRevocationProvider"] {
            for block in ["atlas", "infisical", "onezone"] {
                fields.push((kind, format!("{block}.credentialsSecretRef.name"), IdKind::ObjectName));
            }
            fields.push((kind, "atlas.apiVersions.*".into(), IdKind::AtlasApiVersion));
        }
        for (kind, path, id_kind) in fields {
            let schema = schema_at(kind, &path);
            assert_eq!(schema["pattern"], id_kind.pattern(), "{kind} spec.{path}");
            assert!(
                schema["maxLength"]
                    .as_u64()
                    .is_some_and(|m| m as usize <= id_kind.max_len()),
                "{kind} spec.{path} maxLength {}",
                schema["maxLength"]
            );
        }
        for kind in ["RevocationProvider", "ClusterRevocationProvider"] {
            for block in ["atlas", "infisical", "onezone"] {
                let schema = schema_at(kind, &format!("{block}.baseUrl"));
                assert_eq!(schema["pattern"], crate::api::BASE_URL_PATTERN, "{kind} {block}");
            }
        }
    }

    #[test]
    fn no_string_field_named_like_an_id_lacks_a_pattern() {
        fn walk(schema: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
            let Some(props) = schema["properties"].as_object() else {
                return;
            };
            for (name, prop) in props {
                let here = format!("{path}.{name}");
                let id_like = name.ends_with("Id") || name == "name" || name == "key";
                if id_like && prop["type"] == "string" && prop.get("pattern").is_none() {
                    missing.push(here.clone());
                }
                walk(prop, &here, missing);
            }
        }
        let mut missing = Vec::new();
        for crd in crate::api::all_crds() {
            let value = serde_json::to_value(&crd).unwrap();
            let spec = &value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
            walk(spec, &crd.spec.names.kind, &mut missing);
        }
        assert!(missing.is_empty(), "id-like fields without a pattern: {missing:?}");
    }

    #[test]
    fn specs_report_the_first_bad_id_by_field() {
        use crate::api::{AuthMethodRevocationSpec, JwksRevocationSpec, TokenRevocationSpec};
        use serde_json::json;
        let token = |v: serde_json::Value| serde_json::from_value::<TokenRevocationSpec>(v).unwrap();
        let bad_field = |r: Result<(), InvalidId>| r.unwrap_err().field;
        let spec = token(json!({"providerRef": {"name": "oz"}, "onezone": {"scope": "NamedToken", "tokenId": ".."}}));
        assert_eq!(bad_field(spec.validate_ids()), "spec.onezone.tokenId");
        let spec = token(json!({"providerRef": {"name": "inf"}, "infisical": {
            "scope": "UniversalAuthClientSecret", "identityId": "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a",
            "clientSecretId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\t"}}));
        assert_eq!(bad_field(spec.validate_ids()), "spec.infisical.clientSecretId");
        let spec = token(json!({"providerRef": {"name": "inf"}, "infisical": {
            "scope": "AccessToken", "tokenSecretRef": {"name": "tok", "key": "../x"}}}));
        assert_eq!(bad_field(spec.validate_ids()), "spec.infisical.tokenSecretRef.key");
        let auth: AuthMethodRevocationSpec = serde_json::from_value(json!({"providerRef": {"name": "inf"},
            "infisical": {"identityId": "8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a/../x", "authMethod": "azure-auth"}}))
        .unwrap();
        assert_eq!(bad_field(auth.validate_ids()), "spec.infisical.identityId");
        let atlas = json!({"federationSettingsId": "32b6e34b3d91647abb20e7b9", "identityProviderId": "32b6e34b3d91647abb20e7b9"});
        let jwks: JwksRevocationSpec =
            serde_json::from_value(json!({"providerRef": {"name": "Atlas/x"}, "atlas": atlas})).unwrap();
        assert_eq!(bad_field(jwks.validate_ids()), "spec.providerRef.name");
        let jwks: JwksRevocationSpec =
            serde_json::from_value(json!({"providerRef": {"name": "atlas"}, "atlas": atlas})).unwrap();
        assert_eq!(jwks.validate_ids(), Ok(()));
    }

    #[test]
    fn provider_blocks_report_bad_secret_names_and_api_versions() {
        use crate::api::RevocationProviderSpec;
        use serde_json::json;
        let backend = |v: serde_json::Value| {
            let spec: RevocationProviderSpec = serde_json::from_value(v).unwrap();
            spec.config().unwrap().backend
        };
        let atlas = backend(json!({"atlas": {"credentialsSecretRef": {"name": "atlas"},
            "apiVersions": {"disableCustomerManagedX509": "2023-01-01\n"}}}));
        let err = atlas.validate_ids().unwrap_err();
        assert_eq!(err.field, "spec.atlas.apiVersions.disableCustomerManagedX509");
        let onezone = backend(
            json!({"onezone": {"baseUrl": "https://oz.example", "credentialsSecretRef": {"name": "oz creds"}}}),
        );
        assert_eq!(
            onezone.validate_ids().unwrap_err().field,
            "spec.onezone.credentialsSecretRef.name"
        );
        let onezone =
            backend(json!({"onezone": {"baseUrl": "https://oz.example", "credentialsSecretRef": {"name": "oz"}}}));
        assert_eq!(onezone.validate_ids(), Ok(()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The schema pattern and the controller's check agree on arbitrary (mostly near-valid) input,
        /// and never panic.
        #[test]
        fn schema_and_validator_agree(
            kind_index in 0..IdKind::ALL.len(),
            value in r"[a-fA-F0-9._~/\\%?# \t\n-]{0,40}|\PC{0,12}",
        ) {
            let kind = IdKind::ALL[kind_index];
            let accepted = validate_id("f", kind, &value).is_ok();
            prop_assert_eq!(accepted, schema_accepts(kind, &value), "{:?} {:?}", kind, value);
            if accepted {
                prop_assert!(value.bytes().all(|b| b.is_ascii_graphic()));
                prop_assert!(!value.contains(['/', '\\', '%', '?', '#']));
                prop_assert!(value != "." && value != "..");
            }
        }

        #[test]
        fn valid_uuids_and_onezone_ids_are_accepted(uuid in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                                                     oz in "[A-Za-z0-9_-]{1,128}") {
            prop_assert!(validate_id("f", IdKind::Uuid, &uuid).is_ok());
            prop_assert!(validate_id("f", IdKind::OnezoneId, &oz).is_ok());
        }
    }
}
