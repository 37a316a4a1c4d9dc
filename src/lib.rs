//! Revoker: a Kubernetes operator that revokes credentials at external providers.

pub mod api;
pub mod credentials;
pub mod egress;
pub mod providers;
pub mod telemetry;
