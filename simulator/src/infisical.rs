//! Infisical machine-identity auth routes under `/api/v1/auth`.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::faults::StatusFault;
use crate::sim::Sim;
use crate::state::{
    AccessToken, ClientSecret, DEFAULT_INFISICAL_TOKEN_TTL, Identity, State, infisical_response_key,
    universal_auth_client_id,
};
use crate::util::{
    Refusal, SimRequest, bearer_token, constant_time_eq, json_response, lock, now_rfc3339, now_unix, random_alnum,
    random_hex, segments,
};

const CT: &str = "application/json; charset=utf-8";

const MALFORMED_TOKEN: &str =
    "The provided access token is malformed. Please use a valid token or generate a new one and try again.";
const EXPIRED_TOKEN: &str = "Your token has expired. Please re-authenticate.";
const NO_TOKEN_FOUND: &str = "No identity access token found";

fn req_id() -> String {
    format!("req-{}", random_alnum(14))
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `{reqId, statusCode, message, error}`.
pub fn error(status: u16, error: &str, message: impl Into<Value>) -> Response {
    json_response(
        status_code(status),
        CT,
        &json!({
            "reqId": req_id(),
            "statusCode": status,
            "message": message.into(),
            "error": error,
        }),
    )
}

fn not_found_identity(id: &str) -> Response {
    error(404, "NotFound", format!("Failed to find identity with ID {id}"))
}

/// Fastify's answer for a route that does not exist.
fn route_not_found(req: &SimRequest) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        CT,
        &json!({
            "message": format!("Route {}:{} not found", req.method, req.target()),
            "error": "Not Found",
            "statusCode": 404,
        }),
    )
}

fn rate_limited(seconds: u64) -> Response {
    error(
        429,
        "RateLimitExceeded",
        format!("Rate limit exceeded. Please try again in {seconds} seconds"),
    )
}

/// The answer to a "status" fault, with Infisical's error body for that status.
pub fn fault_response(fault: StatusFault, req: &SimRequest) -> Response {
    let segs = segments(&req.path);
    let identity = segs
        .iter()
        .position(|s| s == "identities")
        .and_then(|i| segs.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let mut resp = match fault.status {
        401 if req.path.ends_with("/login") => error(401, "UnauthorizedError", "Invalid credentials"),
        401 => error(401, "UnauthorizedError", NO_TOKEN_FOUND),
        403 => json_response(
            StatusCode::FORBIDDEN,
            CT,
            &json!({
                "reqId": req_id(),
                "statusCode": 403,
                "error": "PermissionDenied",
                "message": "You are not allowed to edit on Identity",
                "details": [],
            }),
        ),
        404 => not_found_identity(&identity),
        429 => return rate_limited(fault.retry_after.unwrap_or(1)),
        500 => error(500, "InternalServerError", "Something went wrong"),
        503 => error(503, "ServiceUnavailable", "Service Unavailable"),
        s => error(
            s,
            "SimulatedFault",
            status_code(s).canonical_reason().unwrap_or("Error"),
        ),
    };
    crate::util::set_retry_after(&mut resp, fault.retry_after_header());
    resp
}

/// Entry point for every path under `/api/v1`.
pub fn handle(sim: &Sim, req: &SimRequest) -> Response {
    let segs = segments(&req.path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let ["api", "v1", "auth", rest @ ..] = segs.as_slice() else {
        return route_not_found(req);
    };
    let m = &req.method;
    match rest {
        ["universal-auth", "login"] if m == Method::POST => login(sim, req),
        ["token", "revoke"] if m == Method::POST => revoke_token(sim, req),
        [method, "identities", id]
            if (m == Method::DELETE || m == Method::GET) && infisical_response_key(method).is_some() =>
        {
            auth_method(sim, req, method, id)
        }
        ["universal-auth", "identities", id, "client-secrets", cs] if m == Method::GET => {
            client_secret(sim, req, id, cs, false)
        }
        ["universal-auth", "identities", id, "client-secrets", cs, "revoke"] if m == Method::POST => {
            client_secret(sim, req, id, cs, true)
        }
        _ => route_not_found(req),
    }
}

// ---------------------------------------------------------------- bodies

fn json_body(req: &SimRequest) -> Result<Value, Refusal> {
    if req.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&req.body).map_err(|_| Box::new(error(400, "BadRequest", "Body is not valid JSON")))
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// Zod-like validation of required string fields: 422 ValidationFailure listing every issue.
fn required_strings(body: &Value, fields: &[&str]) -> Result<Vec<String>, Refusal> {
    let mut values = Vec::new();
    let mut issues = Vec::new();
    if !body.is_object() {
        issues.push(json!({
            "code": "invalid_type",
            "expected": "object",
            "received": type_name(Some(body)).replace("null", "undefined"),
            "path": [],
            "message": "Required",
        }));
    } else {
        for field in fields {
            match body.get(*field) {
                Some(Value::String(s)) => values.push(s.clone()),
                other => {
                    let received = type_name(other);
                    issues.push(json!({
                        "code": "invalid_type",
                        "expected": "string",
                        "received": received,
                        "path": [field],
                        "message": if received == "undefined" {
                            "Required".to_string()
                        } else {
                            format!("Expected string, received {received}")
                        },
                    }));
                }
            }
        }
    }
    if issues.is_empty() {
        Ok(values)
    } else {
        Err(Box::new(error(422, "ValidationFailure", Value::Array(issues))))
    }
}

// ---------------------------------------------------------------- auth

enum TokenCheck {
    Valid(String),
    Unknown,
    Expired,
    Revoked,
}

fn check_token(state: &State, token: &str, now: u64) -> TokenCheck {
    match state
        .infisical
        .access_tokens
        .iter()
        .find(|t| constant_time_eq(t.token.as_bytes(), token.as_bytes()))
    {
        None => TokenCheck::Unknown,
        Some(t) if t.revoked => TokenCheck::Revoked,
        Some(t) if t.expires_at.is_some_and(|e| e <= now) => TokenCheck::Expired,
        Some(t) => TokenCheck::Valid(t.identity_id.clone()),
    }
}

/// The bearer access token's identity, or the answer Infisical gives.
fn authenticate(state: &State, req: &SimRequest) -> Result<String, Refusal> {
    let Some(token) = bearer_token(&req.headers) else {
        return Err(Box::new(error(401, "UnauthorizedError", "Token missing")));
    };
    match check_token(state, token, now_unix()) {
        TokenCheck::Valid(identity) => Ok(identity),
        TokenCheck::Unknown => Err(Box::new(error(403, "TokenError", MALFORMED_TOKEN))),
        TokenCheck::Expired => Err(Box::new(error(403, "TokenError", EXPIRED_TOKEN))),
        TokenCheck::Revoked => Err(Box::new(error(401, "UnauthorizedError", NO_TOKEN_FOUND))),
    }
}

// ---------------------------------------------------------------- operations

fn login(sim: &Sim, req: &SimRequest) -> Response {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (client_id, client_secret) = match required_strings(&body, &["clientId", "clientSecret"]) {
        Ok(v) if v.len() == 2 => (v[0].clone(), v[1].clone()),
        Ok(_) => return error(500, "InternalServerError", "Something went wrong"),
        Err(r) => return *r,
    };
    let mut state = lock(&sim.state);
    let ttl_override = state.infisical.access_token_ttl_seconds;
    let Some(identity) = state
        .infisical
        .identities
        .iter_mut()
        .find(|i| universal_auth_client_id(i) == Some(client_id.as_str()))
    else {
        return error(401, "UnauthorizedError", "Invalid credentials");
    };
    let config = identity
        .auth_methods
        .get("universal-auth")
        .cloned()
        .unwrap_or(Value::Null);
    let config_ttl = config
        .get("accessTokenTTL")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_INFISICAL_TOKEN_TTL);
    let ttl = ttl_override.unwrap_or(config_ttl);
    let max_ttl = config
        .get("accessTokenMaxTTL")
        .and_then(Value::as_u64)
        .unwrap_or(ttl)
        .max(ttl);
    let Some(secret) = identity.client_secrets.iter_mut().find(|c| {
        !c.revoked
            && c.secret
                .as_deref()
                .is_some_and(|s| constant_time_eq(s.as_bytes(), client_secret.as_bytes()))
    }) else {
        return error(401, "UnauthorizedError", "Invalid credentials");
    };
    secret.num_uses += 1;
    let identity_id = identity.id.clone();
    let token = format!("sim-infisical-at-{}", random_hex(20));
    state.infisical.access_tokens.push(AccessToken {
        token: token.clone(),
        identity_id,
        auth_method: "universal-auth".to_string(),
        revoked: false,
        expires_at: Some(now_unix().saturating_add(ttl)),
    });
    json_response(
        StatusCode::OK,
        CT,
        &json!({
            "accessToken": token,
            "expiresIn": ttl,
            "accessTokenMaxTTL": max_ttl,
            "tokenType": "Bearer",
        }),
    )
}

/// `POST /token/revoke`: no auth header. Unknown token: 403 TokenError (what Infisical answers
/// for a string that is not one of its JWTs); already revoked: 401 "No identity access token
/// found"; expired: 403 TokenError.
fn revoke_token(sim: &Sim, req: &SimRequest) -> Response {
    let body = match json_body(req) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let token = match required_strings(&body, &["accessToken"]) {
        Ok(v) => v.into_iter().next().unwrap_or_default(),
        Err(r) => return *r,
    };
    let mut state = lock(&sim.state);
    match check_token(&state, &token, now_unix()) {
        TokenCheck::Unknown => error(403, "TokenError", MALFORMED_TOKEN),
        TokenCheck::Expired => error(403, "TokenError", EXPIRED_TOKEN),
        TokenCheck::Revoked => error(401, "UnauthorizedError", NO_TOKEN_FOUND),
        TokenCheck::Valid(_) => {
            for t in &mut state.infisical.access_tokens {
                if t.token == token {
                    t.revoked = true;
                }
            }
            json_response(
                StatusCode::OK,
                CT,
                &json!({"message": "Successfully revoked access token"}),
            )
        }
    }
}

/// GET (read) or DELETE (remove) one auth method of an identity.
fn auth_method(sim: &Sim, req: &SimRequest, method: &str, id: &str) -> Response {
    let mut state = lock(&sim.state);
    if let Err(r) = authenticate(&state, req) {
        return *r;
    }
    let Some(identity) = state.infisical.identities.iter_mut().find(|i| i.id == id) else {
        return not_found_identity(id);
    };
    let short = method.strip_suffix("-auth").unwrap_or(method);
    let key = infisical_response_key(method).unwrap_or("identityAuth");
    let config = if req.method == Method::DELETE {
        identity.auth_methods.remove(method)
    } else {
        identity.auth_methods.get(method).cloned()
    };
    match config {
        Some(config) => {
            let mut body = serde_json::Map::new();
            body.insert(key.to_string(), config);
            json_response(StatusCode::OK, CT, &Value::Object(body))
        }
        None => error(400, "BadRequest", format!("The identity does not have {short} auth")),
    }
}

fn client_secret_view(identity: &Identity, cs: &ClientSecret) -> Value {
    let ua_id = identity
        .auth_methods
        .get("universal-auth")
        .and_then(|c| c.get("id"))
        .cloned()
        .unwrap_or(Value::Null);
    let prefix: String = cs.secret.as_deref().unwrap_or("").chars().take(4).collect();
    json!({
        "id": cs.id,
        "createdAt": cs.created_at,
        "updatedAt": cs.updated_at,
        "description": cs.description,
        "clientSecretPrefix": prefix,
        "clientSecretNumUses": cs.num_uses,
        "clientSecretNumUsesLimit": 0,
        "clientSecretTTL": 0,
        "identityUAId": ua_id,
        "isClientSecretRevoked": cs.revoked,
    })
}

/// GET or revoke one universal-auth client secret.
fn client_secret(sim: &Sim, req: &SimRequest, id: &str, cs_id: &str, revoke: bool) -> Response {
    let mut state = lock(&sim.state);
    if let Err(r) = authenticate(&state, req) {
        return *r;
    }
    let Some(identity) = state.infisical.identities.iter_mut().find(|i| i.id == id) else {
        return not_found_identity(id);
    };
    if !identity.auth_methods.contains_key("universal-auth") {
        return error(400, "BadRequest", "The identity does not have universal auth");
    }
    let Some(pos) = identity.client_secrets.iter().position(|c| c.id == cs_id) else {
        // Infisical names the identity here, not the client secret.
        return not_found_identity(id);
    };
    if revoke {
        let cs = &mut identity.client_secrets[pos];
        cs.revoked = true;
        cs.updated_at = Some(now_rfc3339());
    }
    let view = client_secret_view(identity, &identity.client_secrets[pos]);
    json_response(StatusCode::OK, CT, &json!({ "clientSecretData": view }))
}
