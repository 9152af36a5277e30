//! Early media and DTMF in SIP INFO through Callmesh, with SIPp at both ends: the callee
//! plays early media in a reliable 183 (RFC 3262) that we acknowledge with PRACK and pass
//! to the caller as an ordinary 183 with its description at the relay; after the answer
//! the caller's INFO digit reaches the callee. In one process and across the cluster.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Callmesh, scenario};
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

fn route_to(callee: SocketAddr) -> String {
    format!("[[routes]]\nuser = '^1\\d{{3}}$'\ntarget = \"sip:${{user}}@{callee}\"\n")
}

fn early_media_then_info(cm: &Callmesh, callee: SocketAddr) {
    let far = Sipp::scenario_file(scenario("uas_early_info.xml"))
        .local(callee)
        .calls(3)
        .timeout(Duration::from_secs(30))
        .spawn()
        .unwrap();
    Sipp::scenario_file(scenario("uac_early_info.xml"))
        .remote(cm.sip[0])
        .local(free_local_addr())
        .calls(3)
        .dial("1000")
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap()
        .assert_clean(3);
    let far = far.finish().unwrap();
    far.assert_clean(3);
    assert_eq!(far.counter("FailedRegexpDoesntMatch"), 0, "the callee saw Supported: 100rel, our PRACK and the digit");
    cm.wait_idle();
}

#[test]
fn early_media_and_info_in_one_process() {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    early_media_then_info(&cm, callee);
}

#[test]
fn early_media_and_info_across_the_cluster() {
    let callee = free_local_addr();
    let cm = Callmesh::cluster(&route_to(callee));
    early_media_then_info(&cm, callee);
}
