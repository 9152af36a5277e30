//! RTP bleed, end to end: while real SIPp calls run through `callmesh all` with RTP both
//! ways, a host elsewhere (127.0.0.2) sprays valid-looking RTP at every port of the media
//! range. None of the calls' audio may ever reach it, and the calls' own audio must still
//! arrive whole.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Callmesh, scenario};
use testkit::ports::{free_local_addr, free_local_block};
use testkit::sipp::Sipp;

const RTP_PER_PLAY: u64 = 236;

/// Sprays 12-byte RTP headers at every port of `ports` from 127.0.0.2 until `stop`; returns
/// how many datagrams came back and how many it sent.
fn spray(ports: (u16, u16), stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.2:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let (mut received, mut sent, mut seq) = (0u64, 0u64, 0u16);
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            seq = seq.wrapping_add(1);
            let mut packet = [0x80, 0, 0, 0, 0, 0, 0, 160, 0xba, 0xdb, 0xad, 0x00];
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            for port in ports.0..=ports.1 {
                if socket.send_to(&packet, SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
                    sent += 1;
                }
            }
            while socket.recv_from(&mut buf).is_ok() {
                received += 1;
            }
            // The pace of a real stream (one packet per port per 20 ms), not a wait for anything.
            std::thread::sleep(Duration::from_millis(20));
        }
        while socket.recv_from(&mut buf).is_ok() {
            received += 1;
        }
        (received, sent)
    })
}

#[test]
fn a_host_spraying_rtp_at_the_port_range_never_gets_a_calls_audio() {
    let callee = free_local_addr();
    // A block no other socket of this test gets (its SIPp's media ports were once drawn
    // inside a range picked at random, and the caller echoed the spray back).
    let first = free_local_block(20).port();
    let ports = (first, first + 19);
    let config = format!(
        "[media]\nrtp_ports = \"{}-{}\"\n[[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{callee}\"\n",
        ports.0, ports.1
    );
    let cm = Callmesh::all_in_one(&config);
    // The callee plays its pcap; the caller echoes it back: audio both ways through the relay.
    let player = Sipp::scenario_file(scenario("uas_pcap.xml"))
        .local(callee)
        .media()
        .calls(2)
        .timeout(Duration::from_secs(60))
        .spawn()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sprayer = spray(ports, stop.clone());
    let mut caller = Sipp::scenario_file(scenario("uac_hold.xml"))
        .remote(cm.sip[0])
        .local(free_local_addr())
        .calls(2)
        .rate(20.0)
        .dial("1000")
        .media()
        .arg("-rtp_echo")
        .hold(Duration::from_secs(12))
        .timeout(Duration::from_secs(60))
        .spawn()
        .unwrap();
    cm.wait_metric("media_rtp_packets_relayed_total", "the callee's packets and their echo", |v| v >= 2 * 2 * RTP_PER_PLAY);
    let echoed = caller.screen_counter("Total echo RTP pckts 1st stream").unwrap();
    caller.finish().unwrap().assert_clean(2);
    player.finish().unwrap().assert_clean(2);
    stop.store(true, Ordering::Relaxed);
    let (received, sent) = sprayer.join().unwrap();
    assert_eq!(echoed, 2 * RTP_PER_PLAY, "every packet the callee played reached the caller");
    assert!(sent > 1000, "the sprayer sprayed ({sent} packets)");
    assert_eq!(received, 0, "no packet of any call went toward the sprayer");
    assert!(cm.metric("media_packets_refused_total") > 0, "the spray was refused and counted");
    cm.wait_idle();
}
