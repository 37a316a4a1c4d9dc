//! Onedata Onezone REST API (`/api/v3/onezone`): temporary-token revocation and named tokens.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::faults::StatusFault;
use crate::sim::Sim;
use crate::state::State;
use crate::util::{
    Refusal, SimRequest, bearer_token, constant_time_eq, empty_response, header_str, json_response, lock, segments,
    set_header,
};

const CT: &str = "application/json";

/// `{"error": {"id", "description", "details"?}}`.
pub fn error(status: StatusCode, id: &str, description: &str, details: Option<Value>) -> Response {
    let mut err = json!({ "id": id, "description": description });
    if let Some(d) = details {
        err["details"] = d;
    }
    json_response(status, CT, &json!({ "error": err }))
}

pub fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        "The resource could not be found.",
        None,
    )
}

/// 401; `auth_error` is the reason a token was refused (none when no token was sent).
fn unauthorized(auth_error: Option<(&str, &str)>) -> Response {
    let auth_error = match auth_error {
        Some((id, description)) => json!({ "id": id, "description": description }),
        None => Value::Null,
    };
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "You must authenticate yourself to perform this operation.",
        Some(json!({ "authError": auth_error })),
    )
}

fn forbidden() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "You are not authorized to perform this operation (requires oz_tokens_manage admin privilege).",
        Some(json!({ "hint": "requires oz_tokens_manage admin privilege" })),
    )
}

fn method_not_allowed(allow: &str) -> Response {
    let mut r = empty_response(StatusCode::METHOD_NOT_ALLOWED);
    set_header(&mut r, "allow", allow);
    r
}

/// The answer to a "status" fault, with Onezone's error envelope.
pub fn fault_response(fault: StatusFault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match fault.status {
        401 => unauthorized(None),
        403 => forbidden(),
        404 => not_found(),
        429 => error(
            status,
            "tooManyRequests",
            "Too many requests. Please retry later.",
            None,
        ),
        500 => error(
            status,
            "internalServerError",
            "The server has encountered an error while processing this request.",
            None,
        ),
        503 => error(
            status,
            "serviceUnavailable",
            "The service is temporarily unavailable.",
            None,
        ),
        _ => error(
            status,
            "simulatedFault",
            status.canonical_reason().unwrap_or("Error"),
            None,
        ),
    };
    let retry_after = match (fault.retry_after, fault.status) {
        (Some(n), _) => Some(n),
        (None, 429) => Some(1),
        _ => None,
    };
    if let Some(n) = retry_after
        && !fault.omit_retry_after
    {
        set_header(&mut resp, "retry-after", &n.to_string());
    }
    resp
}

/// The authenticated caller.
struct Caller {
    user_id: String,
    /// Holds oz_tokens_manage.
    admin: bool,
}

fn presented_token(req: &SimRequest) -> Option<&str> {
    header_str(&req.headers, "x-auth-token")
        .or_else(|| bearer_token(&req.headers))
        .or_else(|| header_str(&req.headers, "macaroon"))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn authenticate(state: &State, req: &SimRequest) -> Result<Caller, Refusal> {
    let Some(token) = presented_token(req) else {
        return Err(Box::new(unauthorized(None)));
    };
    let same = |t: &str| constant_time_eq(t.as_bytes(), token.as_bytes());
    let revoked = || Box::new(unauthorized(Some(("tokenRevoked", "Provided token has been revoked."))));
    if let Some(t) = state.onezone.tokens.iter().find(|t| same(&t.token)) {
        if t.temporary {
            let current = state
                .onezone
                .users
                .iter()
                .find(|u| u.id == t.user_id)
                .map(|u| u.temporary_token_generation)
                .unwrap_or(0);
            if t.generation.unwrap_or(0) < current {
                return Err(revoked());
            }
        }
        return Ok(Caller {
            user_id: t.user_id.clone(),
            admin: t.admin,
        });
    }
    if let Some(n) = state
        .onezone
        .named_tokens
        .iter()
        .find(|n| n.token.as_deref().is_some_and(same))
    {
        if n.deleted {
            return Err(Box::new(unauthorized(Some((
                "tokenNotFound",
                "The token could not be found (it may have been deleted).",
            )))));
        }
        if n.revoked {
            return Err(revoked());
        }
        return Ok(Caller {
            user_id: n.user_id.clone(),
            admin: n.admin,
        });
    }
    Err(Box::new(unauthorized(Some((
        "badToken",
        "Provided token could not be understood by the server.",
    )))))
}

/// Entry point for every path under `/api/v3/onezone`.
pub fn handle(sim: &Sim, req: &SimRequest) -> Response {
    let segs = segments(&req.path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let ["api", "v3", "onezone", rest @ ..] = segs.as_slice() else {
        return not_found();
    };
    let m = &req.method;
    match rest {
        ["user"] if m == Method::GET => current_user(sim, req),
        ["user"] => method_not_allowed("GET"),
        ["user", "tokens", "temporary"] if m == Method::DELETE => temporary(sim, req, None),
        ["user", "tokens", "temporary"] => method_not_allowed("DELETE"),
        ["users", id, "tokens", "temporary"] if m == Method::DELETE || m == Method::GET => {
            temporary(sim, req, Some(*id))
        }
        ["users", _, "tokens", "temporary"] => method_not_allowed("GET, DELETE"),
        ["tokens", "named", id] if m == Method::GET || m == Method::PATCH || m == Method::DELETE => named(sim, req, id),
        ["tokens", "named", _] => method_not_allowed("GET, PATCH, DELETE"),
        _ => not_found(),
    }
}

fn current_user(sim: &Sim, req: &SimRequest) -> Response {
    let state = lock(&sim.state);
    let caller = match authenticate(&state, req) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(user) = state.onezone.users.iter().find(|u| u.id == caller.user_id) else {
        return not_found();
    };
    json_response(
        StatusCode::OK,
        CT,
        &json!({
            "userId": user.id,
            "fullName": user.full_name,
            "username": user.username,
            "linkedAccounts": [],
            "emails": [],
            "basicAuthEnabled": true,
            "blocked": false,
            "creationTime": CREATION_TIME,
        }),
    )
}

/// When every simulated user was created (Unix seconds, the contract's `Timestamp`).
const CREATION_TIME: u64 = 1_700_000_000;

/// GET the generation, or DELETE (revoke all temporary tokens) for `user` (None = the caller).
fn temporary(sim: &Sim, req: &SimRequest, user: Option<&str>) -> Response {
    let mut state = lock(&sim.state);
    let caller = match authenticate(&state, req) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let user_id = user.map_or_else(|| caller.user_id.clone(), str::to_string);
    let Some(u) = state.onezone.users.iter_mut().find(|u| u.id == user_id) else {
        return not_found();
    };
    if !(caller.admin || caller.user_id == user_id) {
        return forbidden();
    }
    if req.method == Method::GET {
        return json_response(
            StatusCode::OK,
            CT,
            &json!({ "generation": u.temporary_token_generation }),
        );
    }
    u.temporary_token_generation += 1;
    u.temporary_token_revocations += 1;
    empty_response(StatusCode::NO_CONTENT)
}

fn named(sim: &Sim, req: &SimRequest, id: &str) -> Response {
    let mut state = lock(&sim.state);
    let caller = match authenticate(&state, req) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(token) = state.onezone.named_tokens.iter_mut().find(|t| t.id == id && !t.deleted) else {
        return not_found();
    };
    if !(caller.admin || caller.user_id == token.user_id) {
        return forbidden();
    }
    if req.method == Method::GET {
        return json_response(
            StatusCode::OK,
            CT,
            &json!({
                "id": token.id,
                "name": token.name,
                "revoked": token.revoked,
                "subject": { "type": "user", "id": token.user_id },
            }),
        );
    }
    if req.method == Method::DELETE {
        token.deleted = true;
        return empty_response(StatusCode::NO_CONTENT);
    }
    // PATCH
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(Value::Object(m)) => Value::Object(m),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformedData",
                "Provided data could not be understood by the server.",
                None,
            );
        }
    };
    let revoked = match body.get("revoked") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "badValueBoolean",
                "Bad value: provided \"revoked\" must be a boolean.",
                Some(json!({ "key": "revoked" })),
            );
        }
    };
    let name = match body.get("name") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "badValueString",
                "Bad value: provided \"name\" must be a string.",
                Some(json!({ "key": "name" })),
            );
        }
    };
    if let Some(r) = revoked {
        token.revoked = r;
    }
    if let Some(n) = name {
        token.name = n;
    }
    empty_response(StatusCode::NO_CONTENT)
}
