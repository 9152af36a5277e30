//! The fabric under test: the in-process backends, or NATS and JetStream on a real
//! `nats-server` started for the test. `conformance!` runs one test body against both.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use cluster::bus::{Bus, LocalBus, NatsBus};
use cluster::registry::{JetStreamRegistry, MemoryRegistry, Registry, RegistryConfig};
use testkit::nats::NatsServer;

pub struct Fabric {
    pub bus: Arc<dyn Bus>,
    pub registry: Arc<dyn Registry>,
    server: Option<NatsServer>,
    local_bus: Option<LocalBus>,
}

impl Fabric {
    pub async fn local(config: RegistryConfig) -> Fabric {
        let bus = LocalBus::default();
        Fabric {
            bus: Arc::new(bus.clone()),
            registry: Arc::new(MemoryRegistry::new(&config)),
            server: None,
            local_bus: Some(bus),
        }
    }

    pub async fn nats(config: RegistryConfig) -> Fabric {
        let server = NatsServer::start().expect("nats-server starts");
        let bus = NatsBus::connect(&server.url, "test").await.expect("connects to NATS");
        let registry = JetStreamRegistry::connect(bus.client().clone(), &config).await.expect("JetStream buckets");
        Fabric { bus: Arc::new(bus), registry: Arc::new(registry), server: Some(server), local_bus: None }
    }

    /// Another connection to the same bus (another node).
    pub async fn other_node(&self) -> Arc<dyn Bus> {
        match (&self.server, &self.local_bus) {
            (Some(s), _) => Arc::new(NatsBus::connect(&s.url, "other").await.expect("second connection")),
            (None, Some(b)) => Arc::new(b.clone()),
            _ => unreachable!(),
        }
    }

    pub fn is_nats(&self) -> bool {
        self.server.is_some()
    }
}

/// Waits for `f` to return `Some`, polling every 20 ms up to `limit`; panics naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Receives within a bound, naming what was awaited.
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Declares each test once per backend: `local::name` and `nats::name`.
#[macro_export]
macro_rules! conformance {
    ($config:expr; $($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Fabric::local({ use super::*; $config }).await).await
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Fabric::nats({ use super::*; $config }).await).await
                }
            )*
        }
    };
}
