//! Where calls' media goes in a cluster with two media nodes of unequal room (5 and 20
//! calls' worth of ports), one process per role on a real nats-server: SIPp puts more calls
//! up at once than the small node could hold, and every one goes through because the
//! session node sends allocations by headroom; a route pinned to a zone uses that zone's
//! node only.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Callmesh;
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

/// The processes: edge, router, session, and the media nodes `small` (zone a, 5 calls) and
/// `large` (zone b, 20 calls) on port ranges of their own.
fn cluster(callee: SocketAddr) -> Callmesh {
    let base = 46_000 + free_local_addr().port() % 40 * 100;
    let routes = format!(
        "[[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{callee}\"\n\
         [[routes]]\nuser = '^2'\ntarget = \"sip:${{user}}@{callee}\"\nmedia_zone = \"a\"\n"
    );
    let small = format!("[media]\nzone = \"a\"\nrtp_ports = \"{}-{}\"\n", base, base + 19);
    let large = format!("[media]\nzone = \"b\"\nrtp_ports = \"{}-{}\"\n", base + 20, base + 99);
    Callmesh::processes(
        &routes,
        &[
            ("media", "media-small", &small),
            ("media", "media-large", &large),
            ("router", "router-0", ""),
            ("session", "session-0", ""),
            ("edge", "edge-0", ""),
        ],
    )
}

#[test]
fn calls_go_to_the_node_with_room_and_a_zone_pins_them() {
    let callee = free_local_addr();
    let cm = cluster(callee);
    let (small, large) = (0, 1);
    // 16 calls up at once for 3 s: more than the small node's 5.
    let far = Sipp::builtin("uas").local(callee).calls(19).timeout(Duration::from_secs(60)).spawn().unwrap();
    Sipp::builtin("uac")
        .remote(cm.sip[0])
        .local(free_local_addr())
        .calls(16)
        .rate(50.0)
        .dial("1000")
        .hold(Duration::from_secs(3))
        .timeout(Duration::from_secs(60))
        .run()
        .unwrap()
        .assert_clean(16);
    let placed = |node| cm.metric_of(node, "media_allocations_total");
    assert_eq!(placed(small) + placed(large), 16);
    assert!(placed(large) >= 11, "the large node took at least what the small one could not: {}", placed(large));
    assert_eq!(cm.metric_of(small, "media_allocation_failures_total"), 0, "the small node was never asked beyond its room");

    // Route 2… is pinned to zone a: its calls use the small node only.
    let (small_before, large_before) = (placed(small), placed(large));
    Sipp::builtin("uac")
        .remote(cm.sip[0])
        .local(free_local_addr())
        .calls(3)
        .rate(10.0)
        .dial("2000")
        .timeout(Duration::from_secs(60))
        .run()
        .unwrap()
        .assert_clean(3);
    far.finish().unwrap().assert_clean(19);
    assert_eq!((placed(small), placed(large)), (small_before + 3, large_before), "zone a's node took the pinned calls");
    cm.wait_idle();
}
