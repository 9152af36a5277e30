//! `callmesh` as it runs in a Kubernetes pod, against a fake API server: the variables
//! Kubernetes injects do not stop it, it advertises its Node's address, it drains when its
//! pod is deleted (unready, new calls refused) and exits cleanly on SIGTERM; a failed
//! lookup says why and falls back. Bad settings of our own still stop the start.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use common::raw_sip::{RawSip, header, status};
use common::{Callmesh, readyz, scrape, wait_readyz};
use sip::transport::advertised_ip;
use testkit::kube_api::FakeKubeApi;

/// What Kubernetes puts in every pod of a namespace with Services named `callmesh` and
/// `callmesh-media`, and a variable of an image's own.
fn service_links() -> Vec<(&'static str, String)> {
    [
        ("CALLMESH_SERVICE_HOST", "10.96.0.10"),
        ("CALLMESH_SERVICE_PORT", "5060"),
        ("CALLMESH_SERVICE_PORT_SIP_UDP", "5060"),
        ("CALLMESH_PORT", "udp://10.96.0.10:5060"),
        ("CALLMESH_PORT_5060_UDP", "udp://10.96.0.10:5060"),
        ("CALLMESH_PORT_5060_UDP_PROTO", "udp"),
        ("CALLMESH_PORT_5060_UDP_ADDR", "10.96.0.10"),
        ("CALLMESH_MEDIA_SERVICE_HOST", "10.96.0.11"),
        ("CALLMESH_MEDIA_PORT_9062_TCP_ADDR", "10.96.0.11"),
        ("CALLMESH_BIN", "/usr/local/bin/callmesh"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

fn in_pod(api: &FakeKubeApi, dir: &tempfile::TempDir, node: &str, pod: &str) -> Vec<(&'static str, String)> {
    let mut env = service_links();
    env.push(("KUBECONFIG", api.kubeconfig(dir.path()).display().to_string()));
    env.push(("CALLMESH_KUBE_NODE", node.to_owned()));
    env.push(("CALLMESH_KUBE_POD", pod.to_owned()));
    env.push(("CALLMESH_KUBE_NAMESPACE", "voice".to_owned()));
    env.push(("CALLMESH_SIP_LISTEN", format!("0.0.0.0:{}", testkit::ports::free_local_addr().port())));
    env.push(("CALLMESH_MEDIA_BIND", "0.0.0.0".to_owned()));
    env
}

fn sip_port(cm: &Callmesh) -> SocketAddr {
    let line = cm.output().lines().find(|l| l.contains("SIP   udp+tcp")).unwrap().to_owned();
    let port = line.split_whitespace().nth(2).unwrap().rsplit_once(':').unwrap().1.parse().unwrap();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

#[test]
fn in_a_pod_it_advertises_its_node_and_drains_when_the_pod_is_deleted() {
    let api = FakeKubeApi::start();
    api.add_node("worker-1", &[("InternalIP", "10.0.0.5"), ("ExternalIP", "203.0.113.7")], &[]);
    api.add_pod("voice", "callmesh-0");
    let dir = tempfile::tempdir().unwrap();
    let mut cm = Callmesh::all_in_one_with("", &in_pod(&api, &dir, "worker-1", "callmesh-0"));
    let out = cm.output();
    assert!(out.contains("udp+tcp 0.0.0.0:") && out.contains("(advertised as 203.0.113.7)"), "{out}");
    assert!(out.contains("RTP   0.0.0.0 ports") && out.matches("(advertised as 203.0.113.7)").count() == 2, "{out}");

    // Ready: every check passes.
    let report = wait_readyz(cm.http[0], 200, "the node to be ready");
    for check in ["draining: ok (no)", "bus: ok (in-process)", "registry: ok (written", "sip: ok"] {
        assert!(report.contains(check), "{check}: {report}");
    }
    let edge = sip_port(&cm);
    let probe = RawSip::bind();
    probe.send(edge, &probe.options(edge, "before"));
    assert_eq!(status(&probe.recv().expect("OPTIONS answered").0), 200);

    // The pod is deleted: the node drains at once (before any SIGTERM).
    testkit::wait::blocking_until("the node to watch its pod", Duration::from_secs(10), || api.watching("callmesh-0"));
    api.delete_pod("voice", "callmesh-0");
    let report = wait_readyz(cm.http[0], 503, "the node to turn unready");
    assert!(report.contains("draining: FAIL (yes)"), "{report}");
    assert_eq!(scrape(cm.http[0]).get("callmesh_node_draining"), Some(&1));
    assert_eq!(scrape(cm.http[0]).get("callmesh_node_ready"), Some(&0));
    // Balancers see it: OPTIONS and new calls get 503 with Retry-After.
    probe.send(edge, &probe.options(edge, "after"));
    let (refused, _) = probe.recv().expect("OPTIONS answered while draining");
    assert_eq!(status(&refused), 503, "{refused}");
    assert_eq!(header(&refused, "Retry-After"), Some("5"), "{refused}");
    let invite = probe.invite(edge, "1000", "while-draining", "127.0.0.1:40000".parse().unwrap());
    probe.send(edge, &invite);
    assert_eq!(status(&probe.recv_final().expect("INVITE answered while draining").0), 503);
    assert_eq!(readyz(cm.http[0]).0, 503);

    // SIGTERM: nothing left to do, a clean exit.
    let exit = cm.processes[0].terminate(Duration::from_secs(10)).unwrap();
    assert!(exit.success(), "{exit:?}\n{}", cm.output());
    assert!(!cm.output().contains("drain timeout"), "{}", cm.output());
}

#[test]
fn a_failed_node_lookup_says_why_and_falls_back_to_the_interface() {
    let api = FakeKubeApi::start();
    api.add_node("private-1", &[("InternalIP", "10.0.0.6")], &[]);
    let dir = tempfile::tempdir().unwrap();
    let cm = Callmesh::all_in_one_with("", &in_pod(&api, &dir, "private-1", "callmesh-1"));
    let out = cm.output();
    assert!(out.contains("cannot learn the Node's address") && out.contains("Node private-1 has no ExternalIP"), "{out}");
    let fallback = advertised_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert!(out.contains(&format!("(advertised as {fallback})")) && !out.contains("advertised as 0.0.0.0"), "{out}");
    // The pod it names does not exist: gone means draining.
    wait_readyz(cm.http[0], 503, "a node whose pod is gone to drain");
}

fn start_with(args: &[&str], env: &[(&str, &str)], config: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callmesh"));
    cmd.args(args).envs(env.iter().copied());
    if let Some(text) = config {
        let path = dir.path().join("callmesh.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(path);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn wrong_settings_of_ours_still_stop_the_start_naming_the_key() {
    let (ok, err) = start_with(&["all", "--set", "sip.lisen=127.0.0.1:5999"], &[], None);
    assert!(!ok && err.contains("--set sip.lisen=127.0.0.1:5999: unknown setting sip.lisen"), "{err}");
    let (ok, err) = start_with(&["all"], &[], Some("[sip]\nlisen = \"127.0.0.1:5999\"\n"));
    assert!(!ok && err.contains("unknown field `lisen`"), "{err}");
    let (ok, err) = start_with(&["all"], &[("CALLMESH_SIP_LISTEN", "nowhere")], None);
    assert!(!ok && err.contains("sip.listen: \"nowhere\" is not ip:port"), "{err}");
    let (ok, err) = start_with(&["all"], &[("CALLMESH_KUBE_ADVERTISE", "node-ip")], None);
    assert!(!ok && err.contains("kube.advertise"), "{err}");
}
