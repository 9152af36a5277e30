//! The `callmesh` binary's library: configuration, starting roles, the HTTP endpoint. The
//! roles themselves live in their crates (`edge-proxy`, `router`, `session-node`,
//! `media-node`); this crate only assembles them.

pub mod config;
pub mod http;
pub mod roles;
