//! The addresses a node puts on the wire: the host in Via and Contact, and the address in
//! SDP. In order: the configured one (`sip.advertise`, `media.advertise`); the listen or bind
//! address when it is a specific one; in a Kubernetes pod, its Node's address
//! (`kube.node`, `kube.advertise`); else this host's interface address. Never `0.0.0.0`.

use std::net::IpAddr;

use sip::message::Host;
use sip::transport::advertised_ip;

use crate::config::Validated;
use crate::kube;

/// What a node advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    /// Via and Contact host.
    pub sip: Host,
    /// SDP connection address.
    pub media: IpAddr,
}

/// Works out what to advertise; asks the Kubernetes API only when an address is needed
/// from it. A failed lookup is logged with its reason and the interface address is used.
pub async fn resolve(config: &Validated) -> Advertised {
    let sip_bound = config.sip_listen.ip();
    let needs_node = (config.sip_advertise.is_none() && sip_bound.is_unspecified())
        || (config.media_advertise.is_none() && config.media_bind.is_unspecified());
    let from_node = if needs_node && !config.kube.node.is_empty() { node_address(config).await } else { None };
    let pick = |configured: Option<IpAddr>, bound: IpAddr| {
        configured.or((!bound.is_unspecified()).then_some(bound)).or(from_node).unwrap_or_else(|| advertised_ip(bound))
    };
    Advertised {
        sip: config.sip_advertise.clone().unwrap_or_else(|| pick(None, sip_bound).into()),
        media: pick(config.media_advertise, config.media_bind),
    }
}

async fn node_address(config: &Validated) -> Option<IpAddr> {
    let found = match kube::client().await {
        Ok(client) => kube::node_address(&client, &config.kube).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(ip) => {
            tracing::info!(node = %config.kube.node, %ip, "advertising the Kubernetes Node's address");
            Some(ip)
        }
        Err(e) => {
            tracing::warn!(node = %config.kube.node, error = %e, "cannot learn the Node's address; advertising the interface address");
            None
        }
    }
}
