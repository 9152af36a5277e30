//! The call path across processes on a real nats-server (two edges, a router, two session
//! nodes, a media node), with real SIPp at both ends.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Callmesh, scenario, scrape};
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

fn route_to(uas: SocketAddr) -> String {
    format!("[[routes]]\nuser = '^1\\d{{3}}$'\ntarget = \"sip:${{user}}@{uas}\"\n")
}

fn uac(file: Option<&str>, edge: SocketAddr, calls: u64) -> Sipp {
    let s = match file {
        Some(f) => Sipp::scenario_file(scenario(f)),
        None => Sipp::builtin("uac"),
    };
    s.remote(edge).local(free_local_addr()).calls(calls).rate(20.0).dial("1000").timeout(Duration::from_secs(60))
}

#[test]
fn calls_with_rtp_cross_the_cluster_and_end_from_either_edge() {
    let callee = free_local_addr();
    let cm = Callmesh::cluster(&route_to(callee));

    // Signaling through each edge; the calls are shared by the two session nodes.
    let far = Sipp::builtin("uas").local(callee).calls(40).timeout(Duration::from_secs(60)).spawn().unwrap();
    uac(None, cm.sip[0], 20).run().unwrap().assert_clean(20);
    uac(None, cm.sip[1], 20).run().unwrap().assert_clean(20);
    far.finish().unwrap().assert_clean(40);
    cm.wait_idle();
    let per_session: Vec<u64> =
        cm.http[3..5].iter().map(|h| scrape(*h).get("callmesh_session_calls_started_total").copied().unwrap_or(0)).collect();
    assert_eq!(per_session.iter().sum::<u64>(), 40);
    assert!(per_session.iter().all(|n| *n > 0), "both session nodes took calls: {per_session:?}");

    // RTP through the media node process, counted at the callee and by the media node.
    let callee = free_local_addr();
    let cm2 = Callmesh::cluster(&route_to(callee));
    let mut echo = Sipp::scenario_file(scenario("uas_echo.xml"))
        .local(callee)
        .media()
        .arg("-rtp_echo")
        .timeout(Duration::from_secs(60))
        .spawn()
        .unwrap();
    uac(Some("uac_pcap.xml"), cm2.sip[0], 2).media().run().unwrap().assert_clean(2);
    let relayed = cm2.wait_metric("media_rtp_packets_relayed_total", "the echo of every packet", |v| v >= 2 * 2 * 236);
    assert_eq!(relayed, 2 * 2 * 236);
    assert_eq!(echo.screen_counter("Total echo RTP pckts 1st stream").unwrap(), 2 * 236);
    echo.stop().unwrap();
    cm2.wait_idle();

    // The caller's BYE goes to the other edge, which still ends the call.
    let far = Sipp::builtin("uas").local(callee).calls(3).timeout(Duration::from_secs(60)).spawn().unwrap();
    uac(Some("uac_bye_other_edge.xml"), cm2.sip[0], 3)
        .hold(Duration::from_millis(200))
        .key("other_host", cm2.sip[1].ip())
        .key("other_port", cm2.sip[1].port())
        .run()
        .unwrap()
        .assert_clean(3);
    far.finish().unwrap().assert_clean(3);
    cm2.wait_idle();
    let other_edge = scrape(cm2.http[1]);
    assert_eq!(other_edge.get("callmesh_edge_in_dialog_requests_total"), Some(&3), "the BYEs arrived at the second edge");
}

#[test]
fn cancel_busy_and_callee_hangup_across_processes() {
    let callee = free_local_addr();
    let cm = Callmesh::cluster(&route_to(callee));
    for (uas_file, uac_file, extra) in [
        ("uas_ring.xml", "uac_cancel.xml", None),
        ("uas_busy.xml", "uac_busy.xml", None),
        ("uas_bye.xml", "uac_recv_bye.xml", Some(Duration::from_millis(300))),
    ] {
        let mut uas = Sipp::scenario_file(scenario(uas_file)).local(callee).calls(3).timeout(Duration::from_secs(60));
        let mut caller = uac(Some(uac_file), cm.sip[0], 3);
        if let Some(d) = extra {
            uas = uas.hold(d);
            caller = caller.hold(d);
        }
        let far = uas.spawn().unwrap();
        caller.run().unwrap().assert_clean(3);
        far.finish().unwrap().assert_clean(3);
        cm.wait_idle();
    }
}
