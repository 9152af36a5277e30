//! Real SIPp against the example UAS and UAC of this crate, over UDP and TCP. Every run
//! is bounded (call count, SIPp's own timeout, bounded waits for our processes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use testkit::ports::free_local_addr;
use testkit::process::Spawned;
use testkit::sipp::Sipp;

const CALLS: u64 = 200;

fn start_uas(extra: &[&str]) -> (Spawned, SocketAddr) {
    let addr = free_local_addr();
    let mut cmd = Command::new(testkit::bins::example("uas"));
    cmd.arg("--listen").arg(addr.to_string()).args(extra);
    let mut uas = Spawned::spawn("uas example", cmd).unwrap();
    uas.wait_for_line("uas listening", Duration::from_secs(10)).unwrap();
    (uas, addr)
}

/// Stops the UAS and reads the counters it prints on exit.
fn stop_uas(mut uas: Spawned) -> HashMap<String, u64> {
    uas.terminate(Duration::from_secs(10)).unwrap();
    let line = uas.wait_for_line("uas stats", Duration::from_secs(5)).unwrap();
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(u64::MAX)))
        .collect()
}

fn assert_counters(stats: &HashMap<String, u64>, expected: &[(&str, u64)]) {
    for (name, value) in expected {
        assert_eq!(stats.get(*name), Some(value), "UAS counter {name} in {stats:?}");
    }
}

#[test]
fn sipp_uac_calls_our_uas_over_udp() {
    let (uas, addr) = start_uas(&[]);
    let report = Sipp::builtin("uac")
        .remote(addr)
        .local(free_local_addr())
        .calls(CALLS)
        .rate(100.0)
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap();
    report.assert_clean(CALLS);
    let stats = stop_uas(uas);
    assert_counters(&stats, &[("invites", CALLS), ("acks", CALLS), ("byes", CALLS), ("retransmissions_sent", 0), ("dropped", 0)]);
}

#[test]
fn sipp_uac_calls_our_uas_over_tcp() {
    let (uas, addr) = start_uas(&[]);
    let report = Sipp::builtin("uac")
        .remote(addr)
        .local(free_local_addr())
        .tcp()
        .calls(CALLS)
        .rate(100.0)
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap();
    report.assert_clean(CALLS);
    let stats = stop_uas(uas);
    assert_counters(&stats, &[("invites", CALLS), ("acks", CALLS), ("byes", CALLS), ("retransmissions_sent", 0)]);
}

fn our_uac_calls_sipp_uas(tcp: bool) {
    let sipp_addr = free_local_addr();
    let sipp = Sipp::builtin("uas").local(sipp_addr).calls(CALLS).timeout(Duration::from_secs(30));
    let sipp = if tcp { sipp.tcp() } else { sipp }.spawn().unwrap();
    let mut cmd = Command::new(testkit::bins::example("uac"));
    cmd.arg(sipp_addr.to_string()).args(["--calls", &CALLS.to_string(), "--rate", "100", "--timeout-s", "30"]);
    cmd.args(["--transport", if tcp { "tcp" } else { "udp" }]);
    // SIPp's built-in UAS ends each call with a 4 s pause and fails calls whose TCP
    // connection closes during it.
    cmd.args(["--linger-ms", if tcp { "4500" } else { "0" }]);
    let mut uac = Spawned::spawn("uac example", cmd).unwrap();
    let result = uac.wait_for_line("uac result", Duration::from_secs(40)).unwrap();
    let status = uac.wait(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "{result}");
    assert!(result.contains(&format!("successful={CALLS} failed=0")), "{result}");
    assert!(result.contains("retransmissions_sent=0"), "{result}");
    sipp.finish().unwrap().assert_clean(CALLS);
}

#[test]
fn our_uac_calls_sipp_uas_over_udp() {
    our_uac_calls_sipp_uas(false);
}

#[test]
fn our_uac_calls_sipp_uas_over_tcp() {
    our_uac_calls_sipp_uas(true);
}

#[test]
fn provisional_answers_stop_sipp_invite_retransmissions() {
    // Answered after 1.2 s: SIPp would retransmit the INVITE at 0.5 s without our 100/180.
    let (uas, addr) = start_uas(&["--answer-after-ms", "1200"]);
    let report = Sipp::builtin("uac")
        .remote(addr)
        .local(free_local_addr())
        .calls(20)
        .rate(10.0)
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap();
    report.assert_clean(20);
    assert_counters(&stop_uas(uas), &[("invites", 20), ("acks", 20), ("retransmissions_sent", 0)]);
}

#[test]
fn our_2xx_retransmissions_stop_when_the_ack_arrives() {
    // SIPp acknowledges 1.2 s after our 200: we retransmit it once (at 0.5 s, T1), and the
    // ACK must stop the next one (due at 1.5 s).
    let (uas, addr) = start_uas(&[]);
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios/uac_slow_ack.xml");
    let report = Sipp::scenario_file(scenario)
        .remote(addr)
        .local(free_local_addr())
        .calls(20)
        .rate(10.0)
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap();
    assert_eq!((report.successful(), report.failed()), (20, 0), "{}", report.output);
    let stats = stop_uas(uas);
    assert_counters(&stats, &[("invites", 20), ("acks", 20), ("byes", 20), ("ack_timeouts", 0), ("retransmissions_sent", 20)]);
}
