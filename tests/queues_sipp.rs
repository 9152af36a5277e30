//! A queue served by independent SIP agents and callers: SIPp phones register as three
//! agents — one rings for ever and never answers, two answer after a second and hang up
//! after two of talk — and SIPp callers dial the queue and wait until an agent hangs up on
//! them. In `callmesh all`, and through the cluster with two routers sharing the ACD over
//! JetStream: every caller is served once, by exactly one answering agent; the agent who never answers is rung,
//! cancelled, and after three such offers put on break.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Callmesh, rtp_range, scenario};
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

const CALLERS: u64 = 4;

/// Registers `user` (password = user) with Contact at `phone`.
fn register(edge: SocketAddr, user: &str, phone: SocketAddr) {
    Sipp::scenario_file(scenario("register.xml"))
        .remote(edge)
        .local(free_local_addr())
        .calls(1)
        .timeout(Duration::from_secs(20))
        .key("user", user)
        .arg("-au")
        .arg(user)
        .arg("-ap")
        .arg(user)
        .key("contact_host", phone.ip())
        .key("contact_port", phone.port())
        .run()
        .unwrap()
        .assert_clean(1);
}

/// The queue and its agents' users.
fn config() -> String {
    let users: String =
        ["ringer", "alice", "bob"].iter().map(|u| format!("[[users]]\nusername = \"{u}\"\npassword = \"{u}\"\n")).collect();
    format!(
        "{users}[[queues]]\nname = \"sales\"\nstrategy = \"top-down\"\nring_secs = 2\n\
         [[agents]]\nuser = \"ringer\"\nqueues = [\"sales\"]\n\
         [[agents]]\nuser = \"alice\"\nqueues = [\"sales\"]\n\
         [[agents]]\nuser = \"bob\"\nqueues = [\"sales\"]\n\
         [[routes]]\nuser = '^7000$'\ntarget = \"queue:sales\"\n"
    )
}

#[test]
fn sipp_agents_serve_sipp_callers_through_two_routers() {
    let (min, max) = rtp_range();
    let media = format!("[media]\nrtp_ports = \"{min}-{max}\"\n");
    let roles = [
        ("edge", "edge-0", ""),
        ("router", "router-0", ""),
        ("router", "router-1", ""),
        ("session", "session-0", ""),
        ("media", "media-0", media.as_str()),
    ];
    serve(&Callmesh::processes(&config(), &roles));
}

#[test]
fn sipp_agents_serve_sipp_callers_in_one_process() {
    serve(&Callmesh::all_in_one(&config()));
}

/// Registers the agents' SIPp phones, sends the callers, and checks who served whom.
fn serve(cm: &Callmesh) {
    let edge = cm.sip[0];
    let phones: Vec<SocketAddr> = (0..3).map(|_| free_local_addr()).collect();
    let ringer = Sipp::scenario_file(scenario("uas_ring.xml")).local(phones[0]).timeout(Duration::from_secs(60)).spawn().unwrap();
    let answering: Vec<_> = phones[1..]
        .iter()
        .map(|phone| {
            Sipp::scenario_file(scenario("uas_answer_late.xml"))
                .local(*phone)
                .arg("-d")
                .arg("2000")
                .timeout(Duration::from_secs(60))
                .spawn()
                .unwrap()
        })
        .collect();
    for (user, phone) in ["ringer", "alice", "bob"].iter().zip(&phones) {
        register(edge, user, *phone);
    }

    let callers = Sipp::scenario_file(scenario("uac_recv_bye.xml"))
        .remote(edge)
        .local(free_local_addr())
        .calls(CALLERS)
        .rate(1.0)
        .dial("7000")
        .timeout(Duration::from_secs(60))
        .run()
        .unwrap();
    callers.assert_clean(CALLERS);

    // Each answering agent's SIPp is stopped once the callers are done: the calls it took.
    let served: u64 = answering.into_iter().map(|a| a.stop().unwrap().successful()).sum();
    assert_eq!(served, CALLERS, "every caller served once, by one agent");
    let rung = ringer.stop().unwrap();
    assert!(rung.successful() >= 1, "the agent who never answers was rung and cancelled");
    assert!(rung.successful() <= 3, "and put on break after three offers: rung {} times", rung.successful());
    assert_eq!(rung.failed(), 0);
}
