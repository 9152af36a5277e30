//! The call path in one process (`callmesh all`), with real SIPp at both ends: signaling,
//! RTP both ways through the media node, BYE from either side, CANCEL, a busy callee,
//! registration with digest authentication, and bad input while a call runs.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::raw_sip::{RawSip, status};
use common::{Callmesh, scenario};
use testkit::ports::free_local_addr;
use testkit::sipp::{RunningSipp, Sipp};

const RTP_PER_PLAY: u64 = 236;

/// A route from extensions 1xxx to `uas`.
fn route_to(uas: SocketAddr) -> String {
    format!("[[routes]]\nuser = '^1\\d{{3}}$'\ntarget = \"sip:${{user}}@{uas}\"\n")
}

fn uas(file: Option<&str>, addr: SocketAddr, calls: u64) -> RunningSipp {
    let s = match file {
        Some(f) => Sipp::scenario_file(scenario(f)),
        None => Sipp::builtin("uas"),
    };
    s.local(addr).calls(calls).timeout(Duration::from_secs(60)).spawn().unwrap()
}

fn uac(file: Option<&str>, cm: &Callmesh, calls: u64) -> Sipp {
    let s = match file {
        Some(f) => Sipp::scenario_file(scenario(f)),
        None => Sipp::builtin("uac"),
    };
    s.remote(cm.sip[0]).local(free_local_addr()).calls(calls).rate(20.0).dial("1000").timeout(Duration::from_secs(60))
}

#[test]
fn signaling_calls_complete_at_both_ends() {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    let far = uas(None, callee, 40);
    uac(None, &cm, 40).run().unwrap().assert_clean(40);
    far.finish().unwrap().assert_clean(40);
    cm.wait_idle();
    assert_eq!(cm.metric("session_calls_answered_total"), 40);
    assert_eq!(cm.metric("media_allocation_failures_total"), 0);
}

#[test]
fn rtp_crosses_the_media_node_in_both_directions() {
    // Caller → callee: the caller plays 236 packets per call, the callee echoes them.
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    let mut echo = Sipp::scenario_file(scenario("uas_echo.xml"))
        .local(callee)
        .media()
        .arg("-rtp_echo")
        .timeout(Duration::from_secs(60))
        .spawn()
        .unwrap();
    uac(Some("uac_pcap.xml"), &cm, 3).media().run().unwrap().assert_clean(3);
    let relayed = cm.wait_metric("media_rtp_packets_relayed_total", "the echo of every packet", |v| v >= 2 * 3 * RTP_PER_PLAY);
    assert_eq!(relayed, 2 * 3 * RTP_PER_PLAY, "each packet relayed once each way");
    assert_eq!(
        echo.screen_counter("Total echo RTP pckts 1st stream").unwrap(),
        3 * RTP_PER_PLAY,
        "packets that reached the callee"
    );
    echo.stop().unwrap();
    cm.wait_idle();

    // Callee → caller: the callee plays, the caller echoes.
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    let player = Sipp::scenario_file(scenario("uas_pcap.xml"))
        .local(callee)
        .media()
        .calls(2)
        .timeout(Duration::from_secs(60))
        .spawn()
        .unwrap();
    let mut caller = uac(Some("uac_hold.xml"), &cm, 2).media().arg("-rtp_echo").hold(Duration::from_secs(12)).spawn().unwrap();
    cm.wait_metric("media_rtp_packets_relayed_total", "the callee's packets and their echo", |v| v >= 2 * 2 * RTP_PER_PLAY);
    assert_eq!(
        caller.screen_counter("Total echo RTP pckts 1st stream").unwrap(),
        2 * RTP_PER_PLAY,
        "packets that reached the caller"
    );
    caller.finish().unwrap().assert_clean(2);
    player.finish().unwrap().assert_clean(2);
    cm.wait_idle();
}

#[test]
fn either_side_can_hang_up() {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    let far = uas(Some("uas_bye.xml"), callee, 5);
    uac(Some("uac_recv_bye.xml"), &cm, 5).hold(Duration::from_millis(300)).run().unwrap().assert_clean(5);
    far.finish().unwrap().assert_clean(5);
    cm.wait_idle();
    let pairs = cm.metric("media_free_port_pairs");
    assert_eq!(pairs, 100, "every RTP port pair is free again");
}

#[test]
fn cancel_before_answer_reaches_the_callee() {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    let far = uas(Some("uas_ring.xml"), callee, 5);
    uac(Some("uac_cancel.xml"), &cm, 5).run().unwrap().assert_clean(5);
    far.finish().unwrap().assert_clean(5);
    cm.wait_idle();
    assert_eq!(cm.metric("session_calls_unanswered_total"), 5);
}

#[test]
fn a_busy_callee_is_busy_for_the_caller() {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    let far = uas(Some("uas_busy.xml"), callee, 5);
    uac(Some("uac_busy.xml"), &cm, 5).run().unwrap().assert_clean(5);
    far.finish().unwrap().assert_clean(5);
    cm.wait_idle();
}

#[test]
fn a_registered_user_receives_calls_and_a_wrong_password_registers_nothing() {
    let users =
        "[[users]]\nusername = \"alice\"\npassword = \"wonderland\"\n[[routes]]\nuser = \".*\"\ntarget = \"registered\"\n";
    let cm = Callmesh::all_in_one(users);
    let phone = free_local_addr();
    let register = |password: &str, file: &str| {
        Sipp::scenario_file(scenario(file))
            .remote(cm.sip[0])
            .local(free_local_addr())
            .calls(1)
            .timeout(Duration::from_secs(20))
            .key("user", "alice")
            .arg("-au")
            .arg("alice")
            .arg("-ap")
            .arg(password)
            .key("contact_host", phone.ip())
            .key("contact_port", phone.port())
            .run()
            .unwrap()
    };
    // A wrong password: 403, and calls to alice find nobody (480).
    register("guess", "register_denied.xml").assert_clean(1);
    let refused = probe_invite(cm.sip[0], "alice");
    assert_eq!(refused, 480, "nobody is registered");
    // The right one: the call to alice reaches the phone that registered.
    register("wonderland", "register.xml").assert_clean(1);
    let far = uas(None, phone, 3);
    Sipp::builtin("uac")
        .remote(cm.sip[0])
        .local(free_local_addr())
        .calls(3)
        .rate(10.0)
        .dial("alice")
        .timeout(Duration::from_secs(30))
        .run()
        .unwrap()
        .assert_clean(3);
    far.finish().unwrap().assert_clean(3);
}

/// Sends one INVITE to `user` and returns the final status.
fn probe_invite(edge: SocketAddr, user: &str) -> u16 {
    let caller = RawSip::bind();
    let call_id = format!("probe-{}", caller.addr.port());
    caller.send(edge, &caller.invite(edge, user, &call_id, "127.0.0.1:40000".parse().unwrap()));
    let (answer, _) = caller.recv_final().expect("a final response to the probe INVITE");
    status(&answer)
}

#[test]
fn bad_input_gets_precise_answers_and_spares_a_running_call() {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    let far = uas(None, callee, 1);
    let call = uac(None, &cm, 1).hold(Duration::from_secs(3)).spawn().unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let me = s.local_addr().unwrap();
    let head = |extra: &str, omit: &str| {
        let lines = [
            format!("Via: SIP/2.0/UDP {me};branch=z9hG4bK-bad{};rport", rand_u32()),
            "From: <sip:x@127.0.0.1>;tag=1".into(),
            format!("To: <sip:1000@{}>", cm.sip[0]),
            format!("Call-ID: bad-{}", rand_u32()),
            "CSeq: 1 OPTIONS".into(),
            "Max-Forwards: 70".into(),
        ];
        let kept: Vec<String> = lines.into_iter().filter(|l| omit.is_empty() || !l.starts_with(omit)).collect();
        format!("OPTIONS sip:1000@{} SIP/2.0\r\n{}\r\n{extra}Content-Length: 0\r\n\r\n", cm.sip[0], kept.join("\r\n"))
    };
    let answer = |payload: &[u8]| -> Option<String> {
        s.send_to(payload, cm.sip[0]).unwrap();
        let mut buf = vec![0u8; 65_535];
        s.recv(&mut buf).ok().map(|n| String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_owned())
    };
    assert_eq!(answer(head("", "Call-ID").as_bytes()).as_deref(), Some("SIP/2.0 400 Missing Call-ID header"));
    assert_eq!(answer(head("Require: teleport\r\n", "").as_bytes()).as_deref(), Some("SIP/2.0 420 Bad Extension"));
    let truncated = head("", "").replace("Content-Length: 0", "Content-Length: 500");
    assert_eq!(answer(truncated.as_bytes()).as_deref(), Some("SIP/2.0 400 Truncated message: body shorter than Content-Length"));
    let huge = head(&format!("X-Huge: {}\r\n", "x".repeat(60_000)), "");
    assert_eq!(answer(huge.as_bytes()).as_deref(), Some("SIP/2.0 200 OK"), "a large but valid message is served");
    assert_eq!(answer(b"\x00\x01\x02 garbage \xff\xfe"), None, "garbage is dropped");
    assert_eq!(answer(b"INVITE sip:x SIP/2.0\r\nVia: broken"), None, "a message without its end is dropped");
    assert_eq!(
        answer(head("", "").replace("OPTIONS sip", "OPTIONS mailto").as_bytes()).as_deref(),
        Some("SIP/2.0 416 Unsupported URI Scheme")
    );
    call.finish().unwrap().assert_clean(1);
    far.finish().unwrap().assert_clean(1);
    assert!(cm.metric("sip_messages_dropped_total") >= 2);
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

#[test]
fn a_bad_configuration_names_the_key_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[routes]]\nuser = \"(\"\ntarget = \"registered\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callmesh")).arg("--config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("routes[0].user"), "{stderr}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callmesh"))
        .arg("edge")
        .env("CALLMESH_SIP_LISTEN", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nats.url"), "a single role needs NATS");
}

#[test]
fn hold_and_resume_cross_the_b2bua_with_sdp_pointed_at_the_relay() {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&route_to(callee));
    let far = uas(Some("uas_reinvite.xml"), callee, 3);
    let report = uac(Some("uac_hold_resume.xml"), &cm, 3).run().unwrap();
    report.assert_clean(3);
    let far = far.finish().unwrap();
    far.assert_clean(3);
    assert_eq!(far.counter("FailedRegexpDoesntMatch"), 0, "the callee saw a=sendonly, a=sendrecv and the relay's address");
    cm.wait_idle();
}

#[test]
fn a_call_beyond_the_rtp_ports_gets_503_and_others_are_unharmed() {
    let callee = free_local_addr();
    // Two port pairs: room for one call.
    let cm = Callmesh::all_in_one(&format!("[media]\nrtp_ports = \"31900-31903\"\n{}", route_to(callee)));
    let far = uas(None, callee, 1);
    let first = uac(None, &cm, 1).hold(Duration::from_secs(3)).spawn().unwrap();
    cm.wait_metric("media_sessions_active", "the first call to hold the only port pairs", |v| v == 1);
    assert_eq!(probe_invite(cm.sip[0], "1234"), 503);
    first.finish().unwrap().assert_clean(1);
    far.finish().unwrap().assert_clean(1);
    assert_eq!(cm.metric("media_allocation_failures_total"), 1);
}

#[test]
fn a_call_without_rtp_is_ended_with_bye_when_configured() {
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one(&format!("[media]\nno_rtp_timeout_secs = 1\n{}", route_to(callee)));
    let far = uas(None, callee, 2);
    uac(Some("uac_recv_bye.xml"), &cm, 2).run().unwrap().assert_clean(2);
    far.finish().unwrap().assert_clean(2);
    cm.wait_idle();
}
