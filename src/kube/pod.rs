//! Draining when this pod is being deleted: the pod's `deletionTimestamp` is set as soon as
//! the API server accepts the deletion, before any preStop hook or SIGTERM.

use std::time::Duration;

use cluster::drain::Drain;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{WatchEvent, WatchParams};

use super::KubeError;
use crate::config::KubeSettings;

/// After a failed watch, wait this long before trying again.
const RETRY: Duration = Duration::from_secs(2);

/// Watches `settings.pod` and starts `drain` when the pod is being deleted (or is gone).
/// Returns once draining has started, or with an error when the settings name no pod.
pub async fn watch_deletion(client: kube::Client, settings: KubeSettings, drain: Drain) -> Result<(), KubeError> {
    if settings.pod.is_empty() {
        return Err(KubeError::Missing("pod"));
    }
    if settings.namespace.is_empty() {
        return Err(KubeError::Missing("namespace"));
    }
    let pods = Api::<Pod>::namespaced(client, &settings.namespace);
    loop {
        match deletion_seen(&pods, &settings.pod).await {
            Ok(()) => {
                tracing::info!(pod = %settings.pod, "the pod is being deleted: draining");
                drain.start();
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(pod = %settings.pod, error = %e, "watching the pod failed; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = drain.started() => return Ok(()),
                }
            }
        }
    }
}

/// Resolves when the pod is seen being deleted; an error when the watch ends or fails.
async fn deletion_seen(pods: &Api<Pod>, name: &str) -> Result<(), KubeError> {
    let pod = match pods.get_opt(name).await? {
        None => return Ok(()),
        Some(pod) if pod.metadata.deletion_timestamp.is_some() => return Ok(()),
        Some(pod) => pod,
    };
    let version = pod.metadata.resource_version.unwrap_or_else(|| "0".into());
    let params = WatchParams::default().fields(&format!("metadata.name={name}"));
    let mut events = pods.watch(&params, &version).await?.boxed();
    while let Some(event) = events.try_next().await? {
        match event {
            WatchEvent::Modified(pod) if pod.metadata.deletion_timestamp.is_some() => return Ok(()),
            WatchEvent::Deleted(_) => return Ok(()),
            WatchEvent::Error(status) => return Err(KubeError::Api(kube::Error::Api(status))),
            _ => {}
        }
    }
    Err(KubeError::WatchEnded)
}
