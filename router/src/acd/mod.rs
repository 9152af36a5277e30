//! The automatic call distributor: queues, agents and strategies, correct across any number
//! of routers. Every router plans from the same shared records (`plan`) and applies its
//! plan by compare-and-set (`dispatcher`, over `store`), so an agent is never offered two
//! callers at once and a caller is never served twice, also while routers die mid-offer.
//!
//! - [`strategy`]: the order agents are offered a caller in (mod_callcenter's and
//!   app_queue's strategies), tiers and penalties.
//! - [`skills`]: skill requirements as expressions (`skills HAS "spanish" AND level >= 2`).
//! - [`model`]: queues and agents as configured, and their changing records.
//! - [`plan`]: what should happen next, from a snapshot.
//! - [`service`]: the ACD in the router role, on the bus and the registry; [`feed`]: its
//!   event feed.
//! - [`dispatcher`]: one router's ACD, applying plans (and, in `reports`, what sessions
//!   report).
//! - [`store`]: where the records live; [`registry_store`]: in the registry (JetStream KV
//!   in a cluster), [`wire`]: as it stores them.
//! - [`announce`]: what a waiting caller hears (position, expected wait); `places`: where
//!   an abandoned caller stood, for when it calls back; `adrift`: callers whose session
//!   node died, until another takes their call over.

mod adrift;
pub mod announce;
pub mod dispatcher;
pub mod feed;
pub mod model;
mod places;
pub mod plan;
pub mod registry_store;
mod reports;
pub mod service;
pub mod skills;
pub mod store;
pub mod strategy;
pub mod wire;

pub use self::adrift::ADRIFT_MS;
pub use self::dispatcher::{Acd, AcdEvent, Decline, Failed, Outcome};
pub use self::model::{AgentRecord, AgentSpec, CallerRecord, CallerState, Overflow, Place, QueueSpec, State, Status, Tier};
pub use self::registry_store::RegistryStore;
pub use self::store::{AcdStore, MemoryStore, StoreError};
pub use self::strategy::Strategy;
