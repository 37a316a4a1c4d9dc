//! The admin API under `/_sim/`: state, call log, faults. All JSON; never recorded as calls.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use crate::calls::CallFilter;
use crate::faults::FaultSpec;
use crate::sim::Sim;
use crate::state::State;
use crate::util::{json_response, lock, now_unix, query_pairs};

type S = AxState<Arc<Sim>>;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/health", get(health))
        .route("/_sim/reset", post(reset))
        .route("/_sim/state", get(get_state).put(put_state).patch(patch_state))
        .route("/_sim/calls", get(get_calls).delete(clear_calls))
        .route("/_sim/calls/reset", post(clear_calls))
        .route("/_sim/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/_sim/faults/{id}", delete(delete_fault))
        .route("/_sim/tokens/expire", post(expire_tokens))
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, "application/json", &body)
}

fn bad_request(message: impl Into<String>) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        "application/json",
        &json!({"error": message.into()}),
    )
}

async fn health() -> Response {
    ok(json!({"status": "ok"}))
}

async fn reset(AxState(sim): S) -> Response {
    sim.reset();
    ok(json!({"reset": true}))
}

fn state_json(state: &State) -> Response {
    match serde_json::to_value(state) {
        Ok(v) => ok(v),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            &json!({"error": e.to_string()}),
        ),
    }
}

async fn get_state(AxState(sim): S) -> Response {
    let state = lock(&sim.state);
    state_json(&state)
}

/// Replace the whole provider state.
async fn put_state(AxState(sim): S, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    match State::from_json(&text) {
        Ok(new) => {
            let mut state = lock(&sim.state);
            *state = new;
            state_json(&state)
        }
        Err(e) => bad_request(e),
    }
}

/// Add or replace entries (by key) in the provider state.
async fn patch_state(AxState(sim): S, body: Bytes) -> Response {
    let patch: State = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(format!("invalid state JSON: {e}")),
    };
    let mut state = lock(&sim.state);
    let mut next = state.clone();
    match next.merge(patch) {
        Ok(()) => {
            *state = next;
            state_json(&state)
        }
        Err(e) => bad_request(e),
    }
}

async fn get_calls(AxState(sim): S, uri: Uri) -> Response {
    let mut filter = CallFilter::default();
    for (k, v) in query_pairs(uri.query()) {
        match k.as_str() {
            "method" => filter.method = Some(v),
            "path" => filter.path = Some(v),
            "pathPrefix" => filter.path_prefix = Some(v),
            "provider" => filter.provider = Some(v),
            other => return bad_request(format!("unknown filter {other:?}")),
        }
    }
    ok(lock(&sim.calls).report(&filter))
}

async fn clear_calls(AxState(sim): S) -> Response {
    lock(&sim.calls).clear();
    ok(json!({"cleared": true}))
}

async fn list_faults(AxState(sim): S) -> Response {
    ok(lock(&sim.faults).list())
}

async fn add_fault(AxState(sim): S, body: Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return bad_request(format!("invalid fault: {e}")),
    };
    match lock(&sim.faults).add(spec) {
        Ok(view) => json_response(StatusCode::CREATED, "application/json", &view),
        Err(e) => bad_request(e),
    }
}

async fn clear_faults(AxState(sim): S) -> Response {
    lock(&sim.faults).clear();
    ok(json!({"cleared": true}))
}

async fn delete_fault(AxState(sim): S, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return bad_request("fault id must be a number");
    };
    if lock(&sim.faults).remove(id) {
        ok(json!({"deleted": id}))
    } else {
        json_response(
            StatusCode::NOT_FOUND,
            "application/json",
            &json!({"error": format!("no fault {id}")}),
        )
    }
}

/// Expire every bearer token handed out by a login (Atlas service account, Infisical
/// universal auth), to test re-authentication.
async fn expire_tokens(AxState(sim): S) -> Response {
    let n = lock(&sim.state).expire_issued_tokens(now_unix());
    ok(json!({"expired": n}))
}
