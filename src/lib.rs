//! Revoker: a Kubernetes operator that revokes credentials at external providers.
//!
//! Modules, each using only those before it: [`api`] (the CRD types, condition reasons),
//! [`outcome`] (how a call ended, redaction), [`controller`] (reconcilers and `revoker run`),
//! [`providers`] (one client per provider behind one trait), [`credentials`] (Secret parsing),
//! [`egress`] (the host allow-list), [`telemetry`] (metrics, logs), [`server`] (health/metrics
//! endpoints), [`cli`] (the command line).

pub mod api;
pub mod cli;
pub mod controller;
pub mod credentials;
pub mod egress;
pub mod outcome;
pub mod providers;
pub mod server;
pub mod telemetry;
