//! What a node learns from the Kubernetes API when it runs in a pod (`[kube]` settings,
//! which the chart fills from the downward API): the address of its Node to advertise, and
//! that its own pod is being deleted (so it drains before the kubelet's SIGTERM arrives, and
//! even when a preStop hook holds that back). The client is `kube`'s, configured from
//! `KUBECONFIG` or the pod's service account.

mod node;
mod pod;

use std::net::IpAddr;

pub use self::node::node_address;
pub use self::pod::watch_deletion;

/// Why the Kubernetes API did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("no Kubernetes API configuration (KUBECONFIG or a service account): {0}")]
    Config(String),
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("Node {node} has no {wanted} address")]
    NoAddress { node: String, wanted: String },
    #[error("Node {node}: {wanted} is {value:?}, not an IP address")]
    NotAnIp { node: String, wanted: String, value: String },
    #[error("the API server ended the watch")]
    WatchEnded,
    #[error("kube.{0} is not set")]
    Missing(&'static str),
}

/// A client from `KUBECONFIG` (or `~/.kube/config`), else the pod's service account.
pub async fn client() -> Result<kube::Client, KubeError> {
    let config = kube::Config::infer().await.map_err(|e| KubeError::Config(e.to_string()))?;
    kube::Client::try_from(config).map_err(KubeError::Api)
}

fn parse_ip(node: &str, wanted: &str, value: &str) -> Result<IpAddr, KubeError> {
    value.trim().parse().map_err(|_| KubeError::NotAnIp {
        node: node.to_owned(),
        wanted: wanted.to_owned(),
        value: value.to_owned(),
    })
}

/// In a pod (`kube.pod` set), watches it in the background and drains when it is deleted.
pub fn spawn_deletion_watch(settings: &crate::config::KubeSettings, drain: cluster::drain::Drain) {
    if settings.pod.is_empty() {
        return;
    }
    let settings = settings.clone();
    tokio::spawn(async move {
        let result = match client().await {
            Ok(client) => watch_deletion(client, settings.clone(), drain).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(pod = %settings.pod, error = %e, "not watching the pod for deletion (SIGTERM still drains)");
        }
    });
}

#[cfg(test)]
mod tests;
