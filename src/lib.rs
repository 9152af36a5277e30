//! The `callmesh` binary's library: configuration, starting roles, the addresses they
//! advertise, health and drain, the HTTP endpoint and its metrics, telemetry, and what a
//! node learns from Kubernetes. The roles themselves live in their crates (`edge-proxy`,
//! `router`, `session-node`, `media-node`); this crate only assembles them.

pub mod advertise;
pub mod api_role;
pub mod client;
pub mod config;
pub mod drain_client;
pub mod health;
pub mod http;
pub mod kube;
pub mod metrics;
pub mod roles;
pub mod telemetry;
pub mod wallboard;
