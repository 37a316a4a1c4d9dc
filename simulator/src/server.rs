//! The entry handler every provider request goes through (call log, faults, dispatch to the
//! provider modules), and the server loop.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::calls::{Outcome, Provider};
use crate::conn::{ConnHandle, SimListener};
use crate::faults::{Action, Phase, Plan, StatusFault};
pub use crate::sim::Sim;
use crate::util::{SimRequest, empty_response, json_response, lock};
use crate::{admin, atlas, infisical, onezone};

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// The whole HTTP application.
pub fn router(sim: Arc<Sim>) -> Router {
    admin::routes().fallback(provider_entry).with_state(sim)
}

/// Serve until `shutdown` completes (then finish the requests in flight).
pub async fn serve(
    listener: SimListener,
    sim: Arc<Sim>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(
        listener,
        router(sim).into_make_service_with_connect_info::<ConnHandle>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Finishes the call record; if the handler is dropped first (client gone), marks it aborted.
struct CallGuard {
    sim: Arc<Sim>,
    seq: u64,
    started: Instant,
    done: bool,
}

impl CallGuard {
    fn finish(&mut self, status: Option<u16>, outcome: Outcome) {
        self.done = true;
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        lock(&self.sim.calls).finish(self.seq, status, outcome, ms);
    }

    fn fired(&self, plan: &Plan) {
        if !plan.fired.is_empty() {
            lock(&self.sim.calls).add_faults(self.seq, &plan.fired);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.done {
            self.finish(None, Outcome::Aborted);
        }
    }
}

/// Every request that is not an admin route: record it, apply faults, answer as the provider.
async fn provider_entry(AxState(sim): AxState<Arc<Sim>>, req: Request) -> Response {
    let started = Instant::now();
    let conn = req.extensions().get::<ConnectInfo<ConnHandle>>().map(|c| c.0.clone());
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return json_response(
            StatusCode::NOT_FOUND,
            "application/json",
            &json!({"error": format!("no admin endpoint {} {path}", parts.method)}),
        );
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "application/json",
                &json!({"error": format!("request body could not be read: {e}")}),
            );
        }
    };
    let req = SimRequest {
        method: parts.method,
        path,
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    let provider = Provider::of(&req.path);
    let seq = lock(&sim.calls).start(&req);
    let mut guard = CallGuard {
        sim: sim.clone(),
        seq,
        started,
        done: false,
    };
    let method = req.method.as_str().to_string();

    let before = lock(&sim.faults).plan(Phase::Before, &method, &req.path);
    guard.fired(&before);
    if before.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(before.delay_ms)).await;
    }
    let mut resp = match before.action {
        Some(Action::Reset) => return reset(&mut guard, conn.as_ref(), &req),
        Some(Action::Status(f)) => fault_response(&sim, provider, f, &req).await,
        None if before.forget => {
            let kept = lock(&sim.state).clone();
            let resp = dispatch(&sim, provider, &req);
            *lock(&sim.state) = kept;
            resp
        }
        None => dispatch(&sim, provider, &req),
    };
    if before.action.is_none() && resp.status().is_success() {
        let after = lock(&sim.faults).plan(Phase::After, &method, &req.path);
        guard.fired(&after);
        if after.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(after.delay_ms)).await;
        }
        match after.action {
            Some(Action::Reset) => return reset(&mut guard, conn.as_ref(), &req),
            Some(Action::Status(f)) => resp = fault_response(&sim, provider, f, &req).await,
            None => {}
        }
    }
    let status = resp.status().as_u16();
    guard.finish(Some(status), Outcome::Answered);
    tracing::info!("{} {} -> {status}", req.method, req.target());
    resp
}

/// Abort the connection: the response returned here is never written.
fn reset(guard: &mut CallGuard, conn: Option<&ConnHandle>, req: &SimRequest) -> Response {
    match conn {
        Some(c) => {
            c.abort();
            guard.finish(None, Outcome::Reset);
            tracing::info!("{} {} -> connection reset (fault)", req.method, req.target());
        }
        None => {
            // Not served through SimListener (cannot happen in the binary).
            guard.finish(Some(500), Outcome::Answered);
            tracing::warn!("reset fault without a connection handle; answering 500");
        }
    }
    let mut r = empty_response(StatusCode::INTERNAL_SERVER_ERROR);
    crate::util::set_header(&mut r, "connection", "close");
    r
}

fn dispatch(sim: &Sim, provider: Provider, req: &SimRequest) -> Response {
    match provider {
        Provider::Atlas => atlas::handle(sim, req),
        Provider::Infisical => infisical::handle(sim, req),
        Provider::Onezone => onezone::handle(sim, req),
        Provider::Unknown => json_response(
            StatusCode::NOT_FOUND,
            "application/json",
            &json!({
                "error": "no simulated provider serves this path",
                "path": req.path,
                "providers": ["/api/atlas/v2", "/api/oauth/token", "/api/v1/auth", "/api/v3/onezone"],
            }),
        ),
    }
}

async fn fault_response(sim: &Sim, provider: Provider, fault: StatusFault, req: &SimRequest) -> Response {
    let resp = provider_fault_response(sim, provider, fault, req);
    if fault.echo { echo(resp, req).await } else { resp }
}

/// What everything the client sent looks like, as one text: every header (credentials included)
/// and the body.
fn echo_text(req: &SimRequest) -> String {
    let headers: Vec<String> = req
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    format!("{} | body: {}", headers.join(" | "), String::from_utf8_lossy(&req.body))
}

/// Copy the request into every string of the error body and into the request id.
async fn echo(resp: Response, req: &SimRequest) -> Response {
    let text = echo_text(req);
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}));
    fill_strings(&mut value, &text);
    if let Some(obj) = value.as_object_mut() {
        obj.insert("reqId".into(), json!(text));
    }
    let auth = crate::util::header_str(&req.headers, "authorization").unwrap_or("none");
    if let Ok(v) = axum::http::HeaderValue::from_str(auth) {
        parts.headers.insert("x-request-id", v);
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        axum::body::Body::from(serde_json::to_vec(&value).unwrap_or_default()),
    )
}

fn fill_strings(value: &mut Value, text: &str) {
    match value {
        Value::String(s) => *s = format!("{s} [echo: {text}]"),
        Value::Array(items) => items.iter_mut().for_each(|v| fill_strings(v, text)),
        Value::Object(map) => map.values_mut().for_each(|v| fill_strings(v, text)),
        _ => {}
    }
}

fn provider_fault_response(sim: &Sim, provider: Provider, fault: StatusFault, req: &SimRequest) -> Response {
    match provider {
        Provider::Atlas => atlas::fault_response(sim, fault, req),
        Provider::Infisical => infisical::fault_response(fault, req),
        Provider::Onezone => onezone::fault_response(fault),
        Provider::Unknown => {
            let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut r = json_response(
                status,
                "application/json",
                &json!({"error": status.canonical_reason().unwrap_or("Error"), "status": fault.status}),
            );
            crate::util::set_retry_after(&mut r, fault.retry_after_header());
            r
        }
    }
}
