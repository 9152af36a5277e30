//! Test helpers for Callmesh: real peers started by the test and stopped when it ends.
//!
//! - [`process`]: child processes with captured output, bounded waits, SIGTERM stop.
//! - [`sipp`]: SIPp as an independent SIP peer, with its statistics read back.
//! - [`nats`]: nats-server, alone or as a 3-server JetStream cluster.
//! - [`ports`]: free UDP/TCP ports.
//! - [`metrics`]: a Callmesh process's metrics over HTTP.
//! - [`bins`]: where cargo put the examples and binaries under test.
//! - [`pcap`]: RTP captures for SIPp to play (tones, in-band DTMF).
//! - [`kube_api`]: a fake Kubernetes API server (Nodes, Pods, a pod watch).
//! - [`wait`]: bounded waits on a condition in async tests.

pub mod baresip;
pub mod bins;
pub mod kube_api;
pub mod metrics;
pub mod nats;
pub mod pcap;
pub mod ports;
pub mod process;
pub mod sipp;
pub mod wait;
