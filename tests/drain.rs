//! Graceful drain of `callmesh all` with a call in progress, as Kubernetes does it: SIGTERM
//! (or `callmesh drain`, the preStop hook) turns the node unready and refuses new calls with
//! 503, while the call in progress goes on to its BYE; then the process ends by itself. A
//! call that outlasts `node.drain_timeout_secs` does not hold the node forever. In a cluster
//! on NATS, a draining session node leaves its queue group: new calls go to the others.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::raw_sip::{RawSip, status};
use common::{Callmesh, wait_readyz};
use testkit::ports::free_local_addr;
use testkit::sipp::{RunningSipp, Sipp};

/// A node routing 1xxx to a SIPp UAS, and one call from SIPp that hangs up after `hold`.
fn node_with_a_call(hold: Duration, settings: &str) -> (Callmesh, RunningSipp, RunningSipp) {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&format!("{settings}\n[[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{callee}\"\n"));
    let uas = Sipp::builtin("uas").local(callee).calls(1).timeout(Duration::from_secs(60)).spawn().unwrap();
    let uac = Sipp::builtin("uac")
        .remote(cm.sip[0])
        .local(free_local_addr())
        .calls(1)
        .dial("1000")
        .hold(hold)
        .timeout(Duration::from_secs(60))
        .spawn()
        .unwrap();
    // Ringing at the caller (its relay allocated), not only begun: a drain starting before
    // its relay was allocated would refuse it, as it refuses new calls.
    cm.wait_metric("edge_call_setup_seconds_count", "the call to ring", |v| v == 1);
    cm.wait_metric("session_calls_answered_total", "no call ended yet", |v| v == 0);
    cm.wait_metric("session_calls_active", "the call to be up", |v| v == 1);
    (cm, uac, uas)
}

fn new_call_is_refused(cm: &Callmesh) {
    let caller = RawSip::bind();
    caller.send(cm.sip[0], &caller.invite(cm.sip[0], "1001", "during-drain", "127.0.0.1:40000".parse().unwrap()));
    let (answer, _) = caller.recv_final().expect("a new call is answered while draining");
    assert_eq!(status(&answer), 503, "{answer}");
}

#[test]
fn sigterm_lets_the_call_finish_and_refuses_new_ones() {
    let (mut cm, uac, uas) = node_with_a_call(Duration::from_secs(4), "");
    cm.processes[0].sigterm();
    let report = wait_readyz(cm.http[0], 503, "the draining node to turn unready");
    assert!(report.contains("draining: FAIL (yes)"), "{report}");
    new_call_is_refused(&cm);
    assert!(cm.processes[0].wait(Duration::from_millis(200)).is_err(), "still running while the call is up");
    // The call ends as it would have: the caller's BYE crosses the draining node.
    uac.finish().unwrap().assert_clean(1);
    uas.finish().unwrap().assert_clean(1);
    let exit = cm.processes[0].wait(Duration::from_secs(15)).expect("the node exits once the call has ended");
    assert!(exit.success(), "{exit:?}\n{}", cm.output());
    assert!(!cm.output().contains("drain timeout"), "{}", cm.output());
}

#[test]
fn the_drain_timeout_bounds_the_wait() {
    let (mut cm, uac, uas) = node_with_a_call(Duration::from_secs(30), "[node]\ndrain_timeout_secs = 1");
    let asked = Instant::now();
    cm.processes[0].sigterm();
    let exit = cm.processes[0].wait(Duration::from_secs(10)).expect("the node gives up after its drain timeout");
    assert!(exit.success(), "{exit:?}");
    assert!(asked.elapsed() >= Duration::from_secs(1), "waited for the call: {:?}", asked.elapsed());
    assert!(cm.output().contains("drain timeout: stopping with work left") && cm.output().contains("calls"), "{}", cm.output());
    uac.kill();
    uas.kill();
}

#[test]
fn the_prestop_command_answers_once_drained() {
    let (mut cm, uac, uas) = node_with_a_call(Duration::from_secs(3), "");
    let config = cm.path("callmesh-all.toml");
    let drain = std::thread::spawn(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_callmesh")).arg("drain").arg("--config").arg(config).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), Instant::now())
    });
    wait_readyz(cm.http[0], 503, "the node to drain on request");
    new_call_is_refused(&cm);
    uac.finish().unwrap().assert_clean(1);
    let call_ended = Instant::now();
    uas.finish().unwrap().assert_clean(1);
    let (ok, said, answered) = drain.join().unwrap();
    assert!(ok && said.trim() == "drained", "{said}");
    assert!(answered + Duration::from_millis(200) >= call_ended, "answered after the call ended");
    // Drained but not stopped: Kubernetes sends SIGTERM next, and it ends at once.
    let started = Instant::now();
    let exit = cm.processes[0].terminate(Duration::from_secs(10)).unwrap();
    assert!(exit.success() && started.elapsed() < Duration::from_secs(3), "{exit:?} after {:?}", started.elapsed());
}

#[test]
fn a_draining_session_node_leaves_its_queue_group_in_a_cluster() {
    let callee = free_local_addr();
    let cm = Callmesh::cluster(&format!("[[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{callee}\"\n"));
    let (session_0, session_1) = (cm.http[3], cm.http[4]);
    let (code, said) = testkit::metrics::request(session_0, "POST", "/drain").unwrap();
    assert_eq!((code, said.trim()), (200, "drained"));
    assert_eq!(wait_readyz(session_0, 503, "session-0 to be unready").lines().next(), Some("draining: FAIL (yes)"));
    let uas = Sipp::builtin("uas").local(callee).calls(10).timeout(Duration::from_secs(60)).spawn().unwrap();
    Sipp::builtin("uac")
        .remote(cm.sip[0])
        .local(free_local_addr())
        .calls(10)
        .rate(20.0)
        .dial("1000")
        .run()
        .unwrap()
        .assert_clean(10);
    uas.finish().unwrap().assert_clean(10);
    let started = |addr| common::scrape(addr).get("callmesh_session_calls_started_total").copied().unwrap_or(0);
    assert_eq!((started(session_0), started(session_1)), (0, 10), "every call went to the node that is not draining");
}
