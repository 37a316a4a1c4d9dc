//! MongoDB Atlas Admin API v2 (the operations Revoker uses) and the service-account token
//! endpoint. Auth: HTTP Digest (API key pair) or Bearer (service-account token).

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::digest::{self, DigestError};
use crate::faults::StatusFault;
use crate::sim::Sim;
use crate::state::{IdentityProvider, IssuedToken, Project};
use crate::util::{
    Refusal, SimRequest, bearer_token, constant_time_eq, empty_response, is_hex24, json_response, lock, now_rfc3339,
    now_unix, random_hex, segments, set_header,
};

/// Versions each operation accepts (`Accept: application/vnd.atlas.<date>+json`).
pub const JWKS_VERSIONS: &[&str] = &["2023-11-15"];
pub const IDP_VERSIONS: &[&str] = &["2023-11-15"];
/// The only version the official contract documents for the X.509 operations (a later date is
/// refused with 406, as Atlas documents for an unsupported version).
pub const X509_VERSIONS: &[&str] = &["2023-01-01"];

const ERROR_CT: &str = "application/json";
const PUBLIC_BASE: &str = "https://cloud.mongodb.com";

/// An Atlas `ApiError` body.
pub fn error_body(status: u16, code: &str, detail: &str, parameters: Vec<Value>) -> Value {
    json!({
        "detail": detail,
        "error": status,
        "errorCode": code,
        "parameters": parameters,
        "reason": reason(status),
    })
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub fn error_response(status: u16, code: &str, detail: &str, parameters: Vec<Value>) -> Response {
    json_response(
        status_code(status),
        ERROR_CT,
        &error_body(status, code, detail, parameters),
    )
}

/// One entry of an ApiError's `parameters`: the contract has objects there, not bare values.
fn param(value: impl serde::Serialize) -> Value {
    json!({ "value": value })
}

/// 401 with a fresh digest challenge (Atlas always offers Digest).
pub fn unauthorized(sim: &Sim, stale: bool) -> Response {
    let nonce = lock(&sim.nonces).issue();
    let mut resp = error_response(401, "UNAUTHORIZED", "You are not authorized for this resource.", vec![]);
    set_header(&mut resp, "www-authenticate", &digest::challenge(&nonce, stale));
    resp
}

pub fn not_found(path: &str) -> Response {
    error_response(
        404,
        "RESOURCE_NOT_FOUND",
        &format!("Cannot find resource {path}."),
        vec![param(path)],
    )
}

fn invalid_attribute(name: &str) -> Response {
    error_response(
        400,
        "INVALID_ATTRIBUTE",
        &format!("Invalid attribute {name} specified."),
        vec![param(name)],
    )
}

fn not_acceptable() -> Response {
    error_response(
        406,
        "INVALID_VERSION_DATE",
        "Invalid accept header or version date.",
        vec![],
    )
}

fn method_not_allowed(allow: &str) -> Response {
    let mut resp = error_response(
        405,
        "METHOD_NOT_ALLOWED",
        "The requested method is not allowed for this resource.",
        vec![],
    );
    set_header(&mut resp, "allow", allow);
    resp
}

/// The answer to a "status" fault, with Atlas's error body for that status.
pub fn fault_response(sim: &Sim, fault: StatusFault, req: &SimRequest) -> Response {
    let mut resp = match fault.status {
        401 => return unauthorized(sim, false),
        403 => error_response(
            403,
            "IP_ADDRESS_NOT_ON_ACCESS_LIST",
            "IP address 127.0.0.1 is not allowed to access this resource.",
            vec![param("127.0.0.1")],
        ),
        404 => return not_found(&req.path),
        429 => {
            let n = fault.retry_after.unwrap_or(1);
            let resource = req.path.trim_start_matches('/');
            let mut r = error_response(
                429,
                "RATE_LIMITED_TOKEN_BUCKET",
                &format!(
                    "Rate limit exceeded for {resource}. Please retry after {n} seconds. Request capacity 10. Refill rate 5 per 60 seconds."
                ),
                vec![param(resource), param(n), param(10), param(5), param(60)],
            );
            set_header(&mut r, "ratelimit-limit", "10");
            set_header(&mut r, "ratelimit-remaining", "0");
            if !fault.omit_retry_after {
                set_header(&mut r, "retry-after", &n.to_string());
            }
            return r;
        }
        500 => error_response(500, "UNEXPECTED_ERROR", "Unexpected error.", vec![]),
        503 => error_response(503, "SERVICE_UNAVAILABLE", "Service Unavailable.", vec![]),
        s => error_response(s, "SIMULATED_FAULT", reason(s), vec![]),
    };
    crate::util::set_retry_after(&mut resp, fault.retry_after_header());
    resp
}

/// Entry point for every path under `/api/atlas` and `/api/oauth/token`.
pub fn handle(sim: &Sim, req: &SimRequest) -> Response {
    let segs = segments(&req.path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["api", "oauth", "token"] => {
            if req.method == Method::POST {
                oauth_token(sim, req)
            } else {
                method_not_allowed("POST")
            }
        }
        ["api", "atlas", "v2", rest @ ..] => {
            if let Err(resp) = authenticate(sim, req) {
                return *resp;
            }
            v2(sim, req, rest)
        }
        _ => not_found(&req.path),
    }
}

fn v2(sim: &Sim, req: &SimRequest, rest: &[&str]) -> Response {
    let m = &req.method;
    match rest {
        ["orgs"] if m == Method::GET => orgs(req),
        ["orgs"] => method_not_allowed("GET"),
        ["federationSettings", fid, "identityProviders", idp, "jwks"] if m == Method::DELETE => {
            revoke_jwks(sim, req, fid, idp)
        }
        ["federationSettings", _, "identityProviders", _, "jwks"] => method_not_allowed("DELETE"),
        ["federationSettings", fid, "identityProviders", idp] if m == Method::GET => get_idp(sim, req, fid, idp),
        ["federationSettings", _, "identityProviders", _] => method_not_allowed("GET"),
        ["groups", gid, "userSecurity", "customerX509"] if m == Method::DELETE => disable_x509(sim, req, gid),
        ["groups", _, "userSecurity", "customerX509"] => method_not_allowed("DELETE"),
        ["groups", gid, "userSecurity"] if m == Method::GET => get_user_security(sim, req, gid),
        ["groups", _, "userSecurity"] => method_not_allowed("GET"),
        _ => not_found(&req.path),
    }
}

// ---------------------------------------------------------------- auth

/// Digest (API key) or Bearer (service-account token).
fn authenticate(sim: &Sim, req: &SimRequest) -> Result<(), Refusal> {
    let Some(auth) = req.header("authorization") else {
        return Err(Box::new(unauthorized(sim, false)));
    };
    let scheme = auth.trim().split(' ').next().unwrap_or("");
    if scheme.eq_ignore_ascii_case("bearer") {
        let now = now_unix();
        let ok = bearer_token(&req.headers).is_some_and(|t| {
            lock(&sim.state)
                .atlas
                .issued_tokens
                .iter()
                .any(|x| constant_time_eq(x.token.as_bytes(), t.as_bytes()) && x.expires_at > now)
        });
        return if ok {
            Ok(())
        } else {
            Err(Box::new(unauthorized(sim, false)))
        };
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(Box::new(unauthorized(sim, false)));
    }
    let target = req.target();
    let result = {
        let state = lock(&sim.state);
        let mut nonces = lock(&sim.nonces);
        digest::verify(
            auth,
            req.method.as_str(),
            &target,
            |user| {
                state
                    .atlas
                    .api_keys
                    .iter()
                    .find(|k| k.public_key == user)
                    .map(|k| k.private_key.clone())
            },
            |nonce, nc| nonces.use_count(nonce, nc),
        )
    };
    match result {
        Ok(_) => Ok(()),
        Err(DigestError::StaleNonce | DigestError::ReplayedCount) => Err(Box::new(unauthorized(sim, true))),
        Err(e) => {
            tracing::debug!("digest refused: {e:?}");
            Err(Box::new(unauthorized(sim, false)))
        }
    }
}

/// Service-account token: HTTP Basic client credentials, form `grant_type=client_credentials`.
fn oauth_token(sim: &Sim, req: &SimRequest) -> Response {
    let creds = req.header("authorization").and_then(basic_credentials);
    let Some((client_id, secret)) = creds else {
        let mut r = oauth_error(
            401,
            "invalid_client",
            "Client authentication failed: send HTTP Basic client_id:client_secret.",
        );
        set_header(&mut r, "www-authenticate", "Basic realm=\"MongoDB Atlas\"");
        return r;
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut state = lock(&sim.state);
    let ttl = state
        .atlas
        .service_accounts
        .iter()
        .find(|a| a.client_id == client_id && constant_time_eq(a.client_secret.as_bytes(), secret.as_bytes()))
        .map(|a| a.token_ttl_seconds);
    let Some(ttl) = ttl else {
        let mut r = oauth_error(401, "invalid_client", "Client authentication failed.");
        set_header(&mut r, "www-authenticate", "Basic realm=\"MongoDB Atlas\"");
        return r;
    };
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(other) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                &format!("Grant type {other} is not supported."),
            );
        }
        None => return oauth_error(400, "invalid_request", "Missing grant_type."),
    }
    let token = format!("sim-atlas-sa-{}", random_hex(20));
    state.atlas.issued_tokens.push(IssuedToken {
        token: token.clone(),
        client_id,
        expires_at: now_unix().saturating_add(ttl),
    });
    let mut r = json_response(
        StatusCode::OK,
        "application/json",
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl}),
    );
    set_header(&mut r, "cache-control", "no-store");
    r
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    json_response(
        status_code(status),
        "application/json",
        &json!({"error": error, "error_description": description}),
    )
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

// ---------------------------------------------------------------- versions

enum Versions {
    /// Only these dates.
    Only(&'static [&'static str]),
    /// Any well-formed date; also plain JSON or no Accept header (credential checks).
    Lenient,
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Pick the version from the Accept header, or the 406 answer.
fn negotiate(req: &SimRequest, versions: Versions) -> Result<String, Refusal> {
    let accept = req.header("accept").unwrap_or("");
    let mut plain = accept.trim().is_empty();
    for part in accept.split(',') {
        let media = part.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if media == "application/json" || media == "*/*" {
            plain = true;
        }
        if let Some(date) = media
            .strip_prefix("application/vnd.atlas.")
            .and_then(|r| r.strip_suffix("+json"))
        {
            let ok = match &versions {
                Versions::Only(list) => list.contains(&date),
                Versions::Lenient => is_date(date),
            };
            if ok {
                return Ok(date.to_string());
            }
        }
    }
    match versions {
        Versions::Lenient if plain => Ok("2023-01-01".to_string()),
        _ => Err(Box::new(not_acceptable())),
    }
}

fn ok_json(status: StatusCode, version: &str, body: &Value) -> Response {
    json_response(
        status,
        &format!("application/vnd.atlas.{version}+json;charset=utf-8"),
        body,
    )
}

// ---------------------------------------------------------------- operations

fn orgs(req: &SimRequest) -> Response {
    let version = match negotiate(req, Versions::Lenient) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    ok_json(
        StatusCode::OK,
        &version,
        &json!({
            "links": [{"href": format!("{PUBLIC_BASE}/api/atlas/v2/orgs?pageNum=1&itemsPerPage=100"), "rel": "self"}],
            "results": [],
            "totalCount": 0
        }),
    )
}

/// Checks shared by the two IdP operations; runs `f` on the IdP.
fn with_idp(
    sim: &Sim,
    req: &SimRequest,
    versions: &'static [&'static str],
    fid: &str,
    idp: &str,
    f: impl FnOnce(&mut IdentityProvider, &str) -> Response,
) -> Response {
    let version = match negotiate(req, Versions::Only(versions)) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !is_hex24(fid) {
        return invalid_attribute("federationSettingsId");
    }
    if !is_hex24(idp) {
        return invalid_attribute("identityProviderId");
    }
    let mut state = lock(&sim.state);
    let Some(fed) = state.atlas.federations.iter_mut().find(|f| f.id == fid) else {
        return not_found(&req.path);
    };
    let Some(provider) = fed.identity_providers.iter_mut().find(|p| p.id == idp) else {
        return not_found(&req.path);
    };
    f(provider, &version)
}

fn revoke_jwks(sim: &Sim, req: &SimRequest, fid: &str, idp: &str) -> Response {
    with_idp(sim, req, JWKS_VERSIONS, fid, idp, |p, version| {
        p.jwks_revocations += 1;
        p.last_jwks_revoked_at = Some(now_rfc3339());
        // The contract's 204 names the versioned media type, as Atlas's own answer does.
        let mut resp = empty_response(StatusCode::NO_CONTENT);
        set_header(
            &mut resp,
            "content-type",
            &format!("application/vnd.atlas.{version}+json"),
        );
        resp
    })
}

/// The contract's legacy id: 20 lowercase hex digits (the first 20 of the 24-digit id).
fn legacy_okta_id(id: &str) -> String {
    id.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .chain(std::iter::repeat('0'))
        .take(20)
        .collect()
}

fn get_idp(sim: &Sim, req: &SimRequest, fid: &str, idp: &str) -> Response {
    with_idp(sim, req, IDP_VERSIONS, fid, idp, |p, version| {
        ok_json(
            StatusCode::OK,
            version,
            &json!({
                "id": p.id,
                "oktaIdpId": legacy_okta_id(&p.id),
                "displayName": p.display_name,
                "protocol": p.protocol,
                "idpType": "WORKFORCE",
                "issuerUri": p.issuer_uri,
                "audience": p.audience,
                "authorizationType": "GROUP",
                "groupsClaim": "groups",
                "userClaim": "sub",
                "requestedScopes": [],
                "associatedDomains": [],
                "description": "",
            }),
        )
    })
}

fn with_project(sim: &Sim, req: &SimRequest, gid: &str, f: impl FnOnce(&mut Project, &str) -> Response) -> Response {
    let version = match negotiate(req, Versions::Only(X509_VERSIONS)) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if !is_hex24(gid) {
        return invalid_attribute("groupId");
    }
    let mut state = lock(&sim.state);
    let Some(project) = state.atlas.projects.iter_mut().find(|p| p.group_id == gid) else {
        return not_found(&req.path);
    };
    f(project, &version)
}

/// The `UserSecurity` document of a project.
fn user_security(p: &Project) -> Value {
    let customer_x509 = match (&p.cas, p.customer_x509_enabled) {
        (Some(cas), true) => json!({ "cas": cas }),
        _ => json!({}),
    };
    json!({
        "customerX509": customer_x509,
        "ldap": {
            "authenticationEnabled": false,
            "authorizationEnabled": false,
        },
        "links": [{
            "href": format!("{PUBLIC_BASE}/api/atlas/v2/groups/{}/userSecurity", p.group_id),
            "rel": "self",
        }],
    })
}

fn disable_x509(sim: &Sim, req: &SimRequest, gid: &str) -> Response {
    with_project(sim, req, gid, |p, version| {
        p.customer_x509_enabled = false;
        p.cas = None;
        p.x509_disables += 1;
        p.last_x509_disabled_at = Some(now_rfc3339());
        ok_json(StatusCode::ACCEPTED, version, &user_security(p))
    })
}

fn get_user_security(sim: &Sim, req: &SimRequest, gid: &str) -> Response {
    with_project(sim, req, gid, |p, version| {
        ok_json(StatusCode::OK, version, &user_security(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_parse() {
        // base64("mdb_sa_id_sim:mdb_sa_sk_sim")
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("mdb_sa_id_sim:mdb_sa_sk_sim")
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("mdb_sa_id_sim".to_string(), "mdb_sa_sk_sim".to_string()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
    }

    #[test]
    fn date_shape() {
        assert!(is_date("2023-11-15"));
        assert!(!is_date("2023-11-1"));
        assert!(!is_date("2023/11/15"));
    }
}
