//! The address a pod on the host network (or with host ports) advertises: one of its Node's
//! addresses (`ExternalIP` by default), or the value of an annotation an operator put on the
//! Node — so a DaemonSet needs no per-node configuration.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use kube::Api;

use super::{KubeError, parse_ip};
use crate::config::{KubeSettings, NodeAddress};

/// The address of `settings.node` that `settings.advertise` names.
pub async fn node_address(client: &kube::Client, settings: &KubeSettings) -> Result<IpAddr, KubeError> {
    if settings.node.is_empty() {
        return Err(KubeError::Missing("node"));
    }
    let node = Api::<Node>::all(client.clone()).get(&settings.node).await?;
    let name = settings.node.as_str();
    match &settings.advertise {
        NodeAddress::Annotation(key) => {
            let value = node.metadata.annotations.as_ref().and_then(|a| a.get(key));
            let value = value.ok_or_else(|| KubeError::NoAddress { node: name.into(), wanted: format!("annotation {key}") })?;
            parse_ip(name, &format!("annotation {key}"), value)
        }
        kind => {
            let wanted = if *kind == NodeAddress::InternalIp { "InternalIP" } else { "ExternalIP" };
            let addresses = node.status.and_then(|s| s.addresses).unwrap_or_default();
            let found = addresses.iter().find(|a| a.type_ == wanted);
            let found = found.ok_or_else(|| KubeError::NoAddress { node: name.into(), wanted: wanted.into() })?;
            parse_ip(name, wanted, &found.address)
        }
    }
}
