//! Fault injection: latency, error statuses with each provider's real error body, and
//! connection resets, per target (path, optional method), optionally a limited number of times.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `POST /_sim/faults` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    #[serde(rename = "match")]
    pub matcher: FaultMatch,
    pub kind: FaultKind,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub omit_retry_after: bool,
    /// A hostile provider: the error answer copies the request's headers and body into its
    /// message fields and its request id (`x-request-id`, Infisical's `reqId`).
    #[serde(default)]
    pub echo: bool,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub times: Option<u64>,
    #[serde(default)]
    pub phase: Phase,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub path: String,
    /// Only this exact path (no sub-paths).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact: bool,
}

impl FaultMatch {
    /// Matching rules:
    /// - `exact: true`: the path must be equal;
    /// - a path ending in `*`: plain string prefix of what comes before the `*`;
    /// - otherwise: the path itself or anything below it (`/a/b` matches `/a/b` and `/a/b/c`,
    ///   not `/a/bc`).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if let Some(m) = &self.method
            && !m.eq_ignore_ascii_case(method)
        {
            return false;
        }
        if self.exact {
            return path == self.path;
        }
        if let Some(prefix) = self.path.strip_suffix('*') {
            return path.starts_with(prefix);
        }
        let base = self.path.trim_end_matches('/');
        path == base || path.starts_with(&format!("{base}/"))
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    Latency,
    Status,
    Reset,
    /// A provider that answers as usual but does not apply the change (state is kept as before).
    Forget,
}

/// When the fault acts: before the simulated provider handles the request (no effect happens),
/// or after it handled it successfully (the effect happened, but the client gets the fault).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    #[default]
    Before,
    After,
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub id: u64,
    pub spec: FaultSpec,
    /// Remaining activations; `None` = forever.
    pub remaining: Option<u64>,
    pub hits: u64,
}

impl Fault {
    pub fn view(&self) -> Value {
        let s = &self.spec;
        let mut v = json!({
            "id": self.id,
            "match": s.matcher,
            "kind": s.kind,
            "phase": s.phase,
            "remaining": self.remaining,
            "hits": self.hits,
        });
        if let Some(st) = s.status {
            v["status"] = json!(st);
        }
        if let Some(r) = s.retry_after {
            v["retryAfter"] = json!(r);
        }
        if s.omit_retry_after {
            v["omitRetryAfter"] = json!(true);
        }
        if let Some(l) = s.latency_ms {
            v["latencyMs"] = json!(l);
        }
        if let Some(t) = s.times {
            v["times"] = json!(t);
        }
        v
    }
}

/// What a status fault asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusFault {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub omit_retry_after: bool,
    pub echo: bool,
}

impl StatusFault {
    /// The `Retry-After` seconds to send, unless the fault leaves the header out.
    pub fn retry_after_header(&self) -> Option<u64> {
        self.retry_after.filter(|_| !self.omit_retry_after)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Status(StatusFault),
    Reset,
}

/// The faults that apply to one request in one phase.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sum of the matching latency faults.
    pub delay_ms: u64,
    /// The first matching status or reset fault.
    pub action: Option<Action>,
    /// Ids of the faults that fired.
    pub fired: Vec<u64>,
    /// Answer as usual, but keep the state as it was (a `forget` fault).
    pub forget: bool,
}

#[derive(Debug, Default)]
pub struct FaultSet {
    faults: Vec<Fault>,
    next_id: u64,
}

impl FaultSet {
    /// Validate and add a fault; returns its view.
    pub fn add(&mut self, spec: FaultSpec) -> Result<Value, String> {
        if !spec.matcher.path.starts_with('/') {
            return Err("match.path must start with '/'".into());
        }
        if spec.times == Some(0) {
            return Err("times must be at least 1 (omit it for a permanent fault)".into());
        }
        match spec.kind {
            FaultKind::Latency => {
                if spec.latency_ms.is_none() {
                    return Err("a latency fault needs latencyMs".into());
                }
                if spec.status.is_some() {
                    return Err("status is only for kind \"status\"".into());
                }
            }
            FaultKind::Status => match spec.status {
                Some(s) if (400..=599).contains(&s) => {}
                Some(s) => return Err(format!("status {s} is not an error status (400-599)")),
                None => return Err("a status fault needs status".into()),
            },
            FaultKind::Reset | FaultKind::Forget => {
                if spec.status.is_some() || spec.latency_ms.is_some() {
                    return Err("a reset or forget fault takes no status or latencyMs".into());
                }
            }
        }
        self.next_id += 1;
        let fault = Fault {
            id: self.next_id,
            remaining: spec.times,
            spec,
            hits: 0,
        };
        let view = fault.view();
        self.faults.push(fault);
        Ok(view)
    }

    pub fn list(&self) -> Value {
        Value::Array(self.faults.iter().map(Fault::view).collect())
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.faults.len();
        self.faults.retain(|f| f.id != id);
        self.faults.len() != before
    }

    /// Decide the faults for one request in `phase`, consuming their activations: every matching
    /// latency fault adds its delay; the first matching status or reset fault (in the order they
    /// were added) is the action. Faults that run out are removed.
    pub fn plan(&mut self, phase: Phase, method: &str, path: &str) -> Plan {
        let mut plan = Plan::default();
        for f in &mut self.faults {
            if f.spec.phase != phase || !f.spec.matcher.matches(method, path) {
                continue;
            }
            let fires = match f.spec.kind {
                FaultKind::Latency => {
                    plan.delay_ms = plan.delay_ms.saturating_add(f.spec.latency_ms.unwrap_or(0));
                    true
                }
                FaultKind::Status if plan.action.is_none() => {
                    plan.action = Some(Action::Status(StatusFault {
                        status: f.spec.status.unwrap_or(500),
                        retry_after: f.spec.retry_after,
                        omit_retry_after: f.spec.omit_retry_after,
                        echo: f.spec.echo,
                    }));
                    true
                }
                FaultKind::Reset if plan.action.is_none() => {
                    plan.action = Some(Action::Reset);
                    true
                }
                FaultKind::Forget if !plan.forget => {
                    plan.forget = true;
                    true
                }
                _ => false,
            };
            if fires {
                f.hits += 1;
                if let Some(r) = &mut f.remaining {
                    *r = r.saturating_sub(1);
                }
                plan.fired.push(f.id);
            }
        }
        self.faults.retain(|f| f.remaining != Some(0));
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> FaultSpec {
        serde_json::from_str(json).expect("fault spec")
    }

    #[test]
    fn path_matching_rules() {
        let m = |path: &str, exact: bool, method: Option<&str>| FaultMatch {
            method: method.map(str::to_string),
            path: path.to_string(),
            exact,
        };
        let sub = m("/api/atlas/v2", false, None);
        assert!(sub.matches("GET", "/api/atlas/v2"));
        assert!(sub.matches("GET", "/api/atlas/v2/orgs"));
        assert!(!sub.matches("GET", "/api/atlas/v20"));
        let slash = m("/api/atlas/v2/", false, None);
        assert!(slash.matches("GET", "/api/atlas/v2/orgs"));
        let exact = m("/api/atlas/v2", true, None);
        assert!(exact.matches("GET", "/api/atlas/v2"));
        assert!(!exact.matches("GET", "/api/atlas/v2/orgs"));
        let glob = m("/api/v1/auth/az*", false, None);
        assert!(glob.matches("DELETE", "/api/v1/auth/azure-auth/identities/x"));
        assert!(!glob.matches("DELETE", "/api/v1/auth/aws-auth/identities/x"));
        let root = m("/", false, None);
        assert!(root.matches("GET", "/anything"));
        let method = m("/x", false, Some("delete"));
        assert!(method.matches("DELETE", "/x"));
        assert!(!method.matches("GET", "/x"));
    }

    #[test]
    fn times_limits_a_fault_then_it_disappears() {
        let mut set = FaultSet::default();
        set.add(spec(
            r#"{"match":{"method":"DELETE","path":"/a"},"kind":"status","status":503,"times":2}"#,
        ))
        .expect("added");
        for _ in 0..2 {
            let p = set.plan(Phase::Before, "DELETE", "/a");
            assert!(matches!(
                p.action,
                Some(Action::Status(StatusFault { status: 503, .. }))
            ));
        }
        assert_eq!(set.plan(Phase::Before, "DELETE", "/a"), Plan::default());
        assert_eq!(set.list(), json!([]));
    }

    #[test]
    fn non_matching_requests_do_not_consume_a_fault() {
        let mut set = FaultSet::default();
        set.add(spec(
            r#"{"match":{"method":"DELETE","path":"/a"},"kind":"reset","times":1}"#,
        ))
        .expect("added");
        assert_eq!(set.plan(Phase::Before, "GET", "/a"), Plan::default());
        assert_eq!(set.plan(Phase::Before, "DELETE", "/b"), Plan::default());
        assert_eq!(set.plan(Phase::After, "DELETE", "/a"), Plan::default());
        assert_eq!(set.plan(Phase::Before, "DELETE", "/a").action, Some(Action::Reset));
        assert_eq!(set.plan(Phase::Before, "DELETE", "/a"), Plan::default());
    }

    #[test]
    fn latencies_add_up_and_the_first_action_wins() {
        let mut set = FaultSet::default();
        set.add(spec(r#"{"match":{"path":"/a"},"kind":"latency","latencyMs":10}"#))
            .expect("added");
        set.add(spec(
            r#"{"match":{"path":"/a"},"kind":"status","status":429,"retryAfter":3,"times":1}"#,
        ))
        .expect("added");
        set.add(spec(r#"{"match":{"path":"/a"},"kind":"latency","latencyMs":5}"#))
            .expect("added");
        set.add(spec(r#"{"match":{"path":"/"},"kind":"reset","times":1}"#))
            .expect("added");
        let p = set.plan(Phase::Before, "GET", "/a");
        assert_eq!(p.delay_ms, 15);
        assert_eq!(
            p.action,
            Some(Action::Status(StatusFault {
                status: 429,
                retry_after: Some(3),
                omit_retry_after: false,
                echo: false,
            }))
        );
        assert_eq!(p.fired, vec![1, 2, 3]);
        // The 429 is used up; the reset (added later) is next.
        let p = set.plan(Phase::Before, "GET", "/a");
        assert_eq!(p.action, Some(Action::Reset));
        assert_eq!(p.delay_ms, 15);
    }

    #[test]
    fn invalid_specs_are_refused() {
        let mut set = FaultSet::default();
        for bad in [
            r#"{"match":{"path":"/a"},"kind":"status"}"#,
            r#"{"match":{"path":"/a"},"kind":"status","status":200}"#,
            r#"{"match":{"path":"/a"},"kind":"latency"}"#,
            r#"{"match":{"path":"/a"},"kind":"reset","status":500}"#,
            r#"{"match":{"path":"/a"},"kind":"reset","times":0}"#,
            r#"{"match":{"path":"a"},"kind":"reset"}"#,
        ] {
            assert!(set.add(spec(bad)).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<FaultSpec>(r#"{"match":{"path":"/a"},"kind":"boom"}"#).is_err());
    }
}
