//! The Kubernetes lookups against a fake API server (testkit's), through kube's real client.

use std::net::IpAddr;
use std::time::Duration;

use cluster::drain::Drain;
use testkit::kube_api::FakeKubeApi;

use super::{KubeError, node_address, watch_deletion};
use crate::config::{KubeSettings, NodeAddress};

fn client(api: &FakeKubeApi) -> kube::Client {
    let config = kube::Config::new(format!("http://{}", api.addr).parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

fn on_node(node: &str, advertise: NodeAddress) -> KubeSettings {
    KubeSettings { node: node.into(), advertise, ..Default::default() }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn the_node_address_comes_from_its_status_or_an_annotation() {
    let api = FakeKubeApi::start();
    api.add_node(
        "worker-1",
        &[("InternalIP", "10.0.0.5"), ("ExternalIP", "203.0.113.7"), ("Hostname", "worker-1")],
        &[("callmesh.io/public-ip", "198.51.100.9"), ("callmesh.io/bad", "not-an-ip")],
    );
    let c = client(&api);
    assert_eq!(node_address(&c, &on_node("worker-1", NodeAddress::ExternalIp)).await.unwrap(), ip("203.0.113.7"));
    assert_eq!(node_address(&c, &on_node("worker-1", NodeAddress::InternalIp)).await.unwrap(), ip("10.0.0.5"));
    let annotated = on_node("worker-1", NodeAddress::Annotation("callmesh.io/public-ip".into()));
    assert_eq!(node_address(&c, &annotated).await.unwrap(), ip("198.51.100.9"));
    assert!(api.requests().iter().any(|r| r.starts_with("GET /api/v1/nodes/worker-1")), "{:?}", api.requests());
}

#[tokio::test]
async fn a_failed_lookup_says_why() {
    let api = FakeKubeApi::start();
    api.add_node("private", &[("InternalIP", "10.0.0.6")], &[("callmesh.io/bad", "not-an-ip")]);
    let c = client(&api);
    let e = node_address(&c, &on_node("private", NodeAddress::ExternalIp)).await.unwrap_err();
    assert!(matches!(&e, KubeError::NoAddress { .. }) && e.to_string().contains("Node private has no ExternalIP"), "{e}");
    let e = node_address(&c, &on_node("private", NodeAddress::Annotation("callmesh.io/bad".into()))).await.unwrap_err();
    assert!(e.to_string().contains("\"not-an-ip\", not an IP address"), "{e}");
    let e = node_address(&c, &on_node("private", NodeAddress::Annotation("callmesh.io/none".into()))).await.unwrap_err();
    assert!(e.to_string().contains("annotation callmesh.io/none"), "{e}");
    let e = node_address(&c, &on_node("gone", NodeAddress::ExternalIp)).await.unwrap_err();
    assert!(matches!(e, KubeError::Api(_)) && e.to_string().contains("not found"), "{e}");
    let e = node_address(&c, &on_node("", NodeAddress::ExternalIp)).await.unwrap_err();
    assert_eq!(e.to_string(), "kube.node is not set");
}

fn in_pod(pod: &str) -> KubeSettings {
    KubeSettings { pod: pod.into(), namespace: "voice".into(), ..Default::default() }
}

#[tokio::test]
async fn deleting_the_pod_starts_the_drain() {
    let api = FakeKubeApi::start();
    api.add_pod("voice", "session-7f9c");
    let drain = Drain::default();
    let watcher = tokio::spawn(watch_deletion(client(&api), in_pod("session-7f9c"), drain.clone()));
    testkit::wait::until("the node watches its pod", Duration::from_secs(10), || api.watching("session-7f9c")).await;
    assert!(!drain.is_draining(), "a running pod does not drain");
    api.delete_pod("voice", "session-7f9c");
    tokio::time::timeout(Duration::from_secs(10), drain.started()).await.expect("draining once the pod is being deleted");
    tokio::time::timeout(Duration::from_secs(5), watcher).await.expect("the watch ends").unwrap().unwrap();
}

#[tokio::test]
async fn a_pod_already_deleting_or_gone_drains_at_once() {
    let api = FakeKubeApi::start();
    api.add_pod("voice", "edge-old");
    api.delete_pod("voice", "edge-old");
    for pod in ["edge-old", "never-existed"] {
        let drain = Drain::default();
        tokio::time::timeout(Duration::from_secs(10), watch_deletion(client(&api), in_pod(pod), drain.clone()))
            .await
            .expect("answered at once")
            .unwrap();
        assert!(drain.is_draining(), "{pod}");
    }
    let e = watch_deletion(client(&api), KubeSettings::default(), Drain::default()).await.unwrap_err();
    assert_eq!(e.to_string(), "kube.pod is not set");
}
