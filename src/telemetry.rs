//! Logs, and traces over OTLP when the standard OpenTelemetry variables ask for them:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns export on,
//! `OTEL_EXPORTER_OTLP_PROTOCOL` chooses `http/protobuf` (the default) or `grpc`,
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the process, `OTEL_SDK_DISABLED=true`
//! or `OTEL_TRACES_EXPORTER=none` turn it off. Each process names itself after its role
//! (`callmesh-edge`, … unless `OTEL_SERVICE_NAME` says otherwise) with its node id as
//! `service.instance.id`. Spans come from `tracing` through `tracing-opentelemetry`; the bus
//! carries their context (`cluster::trace`), so one call is one trace across processes.

use std::collections::BTreeMap;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The crates whose spans are exported: ours. (The exporter's own HTTP and gRPC clients,
/// and kube's, are left out, whatever `RUST_LOG` says.)
const TRACED: [&str; 6] = ["callmesh", "edge_proxy", "router", "session_node", "media_node", "cluster"];

/// The installed tracer provider, flushed by [`Telemetry::shutdown`].
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Whether `env` (the process environment) asks for OTLP trace export.
pub fn otlp_requested(env: &BTreeMap<String, String>) -> bool {
    let set = |k: &str| env.get(k).is_some_and(|v| !v.trim().is_empty());
    let is = |k: &str, v: &str| env.get(k).is_some_and(|x| x.trim().eq_ignore_ascii_case(v));
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
}

/// Our service name unless the environment gives one.
fn default_service_name(env: &BTreeMap<String, String>, role: &str) -> Option<String> {
    let named = env.get("OTEL_SERVICE_NAME").is_some_and(|v| !v.trim().is_empty())
        || env.get("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|v| v.split(',').any(|kv| kv.trim().starts_with("service.name=")));
    (!named).then(|| format!("callmesh-{role}"))
}

impl Telemetry {
    /// Installs the global subscriber: logs to stderr filtered by `RUST_LOG` (default `info`),
    /// and our info-level spans to OTLP when `env` asks for it (whatever the log level).
    /// Must run inside the tokio runtime.
    pub fn init(role: &str, node_id: &str, env: &BTreeMap<String, String>) -> anyhow::Result<Telemetry> {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
        let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter);
        if !otlp_requested(env) {
            tracing_subscriber::registry().with(logs).init();
            return Ok(Telemetry { provider: None });
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder().build()?;
        let mut resource = Resource::builder().with_attribute(KeyValue::new("service.instance.id", node_id.to_owned()));
        if let Some(name) = default_service_name(env, role) {
            resource = resource.with_service_name(name);
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter, Tokio).build())
            .with_resource(resource.build())
            .build();
        let ours = Targets::new().with_targets(TRACED.map(|t| (t, LevelFilter::INFO)));
        let spans = tracing_opentelemetry::layer().with_tracer(provider.tracer("callmesh")).with_filter(ours);
        tracing_subscriber::registry().with(logs).with(spans).init();
        Ok(Telemetry { provider: Some(provider) })
    }

    /// Exports the spans still buffered and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // The batch processor's shutdown blocks until its task has exported.
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                eprintln!("OpenTelemetry: spans not exported at shutdown: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn export_follows_the_standard_variables() {
        assert!(!otlp_requested(&env(&[])));
        assert!(otlp_requested(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")])));
        assert!(otlp_requested(&env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")])));
        assert!(!otlp_requested(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "TRUE")])));
        assert!(!otlp_requested(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_EXPORTER", "none")])));
    }

    #[test]
    fn the_role_names_the_service_unless_the_environment_does() {
        assert_eq!(default_service_name(&env(&[]), "edge").as_deref(), Some("callmesh-edge"));
        assert_eq!(default_service_name(&env(&[("OTEL_SERVICE_NAME", "pbx")]), "edge"), None);
        let attrs = env(&[("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod, service.name=pbx")]);
        assert_eq!(default_service_name(&attrs, "edge"), None);
        let other = env(&[("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")]);
        assert_eq!(default_service_name(&other, "router").as_deref(), Some("callmesh-router"));
    }
}
