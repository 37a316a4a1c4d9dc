//! Revoker: a Kubernetes operator that revokes credentials at external providers.
//!
//! Modules, each using only those listed before it: [`api`] (the CRD types, condition reasons,
//! id and URL rules), [`outcome`] (how a call ended, redaction), [`telemetry`] (metrics, logs),
//! [`credentials`] (reading Secret keys), [`egress`] (base-URL parser, host allow-list),
//! [`providers`] (one folder per provider behind one trait), [`controller`] (reconcilers and
//! `revoker run`), [`server`] (health/metrics endpoints), [`plugin`] (`kubectl revoker status|approve|retry`), [`validate`] (offline manifest checks), [`breakglass`] (`revoker revoke -f`, no cluster),
//! [`cli`] (the command line).

pub mod api;
pub mod audit;
pub mod breakglass;
pub mod cli;
pub mod controller;
pub mod credentials;
pub mod egress;
pub mod outcome;
pub mod plugin;
pub mod providers;
pub mod server;
pub mod telemetry;
pub mod validate;
