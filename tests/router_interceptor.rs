//! The router's decision in the user's own code, over real SIP: an in-process interceptor a
//! program embedding `callmesh all` registers by name for a route, and, in a cluster of
//! processes on a real nats-server, an interceptor served on the bus as the decider of a
//! `require_manual` route. SIPp calls, SIPp answers; a hand-made INVITE is refused.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callmesh::config::Config;
use callmesh::roles::{self, Extensions, Role};
use cluster::bus::NatsBus;
use cluster::subjects::NodeId;
use common::Callmesh;
use common::raw_sip::{RawSip, ack_for, header, status};
use session_core::interceptor::{CallInfo, Decision, SignalingInterceptor};
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

/// SIPp's calls (From `sipp`) go through; anyone else is refused with 403.
struct SippOnly;

#[async_trait]
impl SignalingInterceptor for SippOnly {
    async fn on_incoming_call(&self, call: &CallInfo) -> Decision {
        if call.from_user == "sipp" { Decision::Accept } else { Decision::reject(403, "SIPp Only") }
    }
}

/// Five SIPp calls through `sip` to a SIPp UAS answer cleanly, and a hand-made INVITE
/// (From `caller`) gets the interceptor's 403 with its reason.
async fn sipp_passes_others_refused(sip: SocketAddr, uas: testkit::sipp::RunningSipp) {
    let uac = Sipp::builtin("uac").remote(sip).local(free_local_addr()).calls(5).rate(10.0).dial("1000");
    let report = tokio::task::spawn_blocking(move || uac.timeout(Duration::from_secs(30)).run()).await.unwrap().unwrap();
    report.assert_clean(5);
    tokio::task::spawn_blocking(move || uas.finish().unwrap().assert_clean(5)).await.unwrap();

    let refused = tokio::task::spawn_blocking(move || {
        let raw = RawSip::bind();
        let invite = raw.invite(sip, "1000", "refused-1", free_local_addr());
        raw.send(sip, &invite);
        let (response, _) = raw.recv_final().expect("a final response to the refused INVITE");
        raw.send(sip, &ack_for(&invite, &response));
        response
    })
    .await
    .unwrap();
    assert_eq!((status(&refused), refused.lines().next().unwrap()), (403, "SIP/2.0 403 SIPp Only"));
    assert!(header(&refused, "To").is_some_and(|t| t.contains("tag=")), "{refused}");
}

fn uas(addr: SocketAddr) -> testkit::sipp::RunningSipp {
    Sipp::builtin("uas").local(addr).calls(5).timeout(Duration::from_secs(30)).spawn().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_router_lets_a_named_interceptor_decide_a_route() {
    let callee = free_local_addr();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("callmesh.toml");
    let (sip, rtp) = (free_local_addr(), 40_000 + free_local_addr().port() % 100 * 200);
    let toml = format!(
        "[sip]\nlisten = \"{sip}\"\n[media]\nrtp_ports = \"{rtp}-{}\"\n\
         [[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{callee}\"\ninterceptor = \"sipp-only\"\n",
        rtp + 199
    );
    std::fs::write(&path, toml).unwrap();
    let config = Config::load(Some(&path), &BTreeMap::new(), &[]).unwrap();

    // Without the interceptor registered, the node does not start, and says why.
    let id = NodeId::new("all-0").unwrap();
    let err = roles::start(Role::All, id.clone(), config.clone()).await.err().expect("an unknown interceptor stops the start");
    assert!(format!("{err:#}").contains(r#"no interceptor named "sipp-only""#), "{err:#}");

    let mut extensions = Extensions::default();
    extensions.interceptors.insert("sipp-only", Arc::new(SippOnly));
    let node = roles::start_with(Role::All, id, config, extensions).await.unwrap();
    sipp_passes_others_refused(sip, uas(callee)).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_asks_an_interceptor_served_on_nats() {
    let callee = free_local_addr();
    let route = format!("[[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{callee}\"\npolicy = \"require_manual\"\n");
    let cm = tokio::task::spawn_blocking(move || Callmesh::one_per_role(&route, &[])).await.unwrap();
    let bus = NatsBus::connect(cm.nats_url().unwrap(), "decider-0").await.unwrap();
    let _decider = router::decider::serve(Arc::new(bus), Arc::new(SippOnly)).await.unwrap();
    sipp_passes_others_refused(cm.sip[0], uas(callee)).await;
    tokio::task::spawn_blocking(move || cm.wait_idle()).await.unwrap();
}
