//! Bound to every interface (`0.0.0.0`), Callmesh still puts a reachable address on the
//! wire: the Via and Contact of the INVITE it sends a callee, and the SDP `c=` line of its
//! offer, carry this host's interface address (or the configured `sip.advertise` /
//! `media.advertise`) — never `0.0.0.0`, which would send the phone's BYE nowhere.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::Callmesh;
use common::raw_sip::{RawSip, ack_for, header, reply, status};
use sip::transport::advertised_ip;

/// A call from `caller` to extension 1000, routed to `callee`; returns the INVITE the callee
/// got (answered 486, so the call ends at once).
fn forwarded_invite(cm: &Callmesh, caller: &RawSip, callee: &RawSip, call_id: &str) -> String {
    let edge = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), cm.sip[0].port());
    let invite = caller.invite(edge, "1000", call_id, "127.0.0.1:40000".parse().unwrap());
    caller.send(edge, &invite);
    let (forwarded, from) = callee.recv().expect("the INVITE reaches the callee");
    assert!(forwarded.starts_with("INVITE "), "{forwarded}");
    callee.send(from, &reply(&forwarded, 486, "Busy Here", "callee"));
    let (busy, _) = caller.recv_final().expect("the caller hears the refusal");
    assert_eq!(status(&busy), 486, "{busy}");
    caller.send(edge, &ack_for(&invite, &busy));
    forwarded
}

fn via_host(invite: &str) -> String {
    let via = header(invite, "Via").unwrap();
    let sent_by = via.split_whitespace().nth(1).unwrap().split(';').next().unwrap();
    sent_by.rsplit_once(':').map_or(sent_by, |(h, _)| h).to_owned()
}

fn contact_host(invite: &str) -> String {
    let contact = header(invite, "Contact").unwrap();
    let uri = contact.trim_start_matches('<').split(['>', ';']).next().unwrap();
    let host_port = uri.rsplit_once('@').map_or(uri.trim_start_matches("sip:"), |(_, hp)| hp);
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h).to_owned()
}

fn sdp_address(invite: &str) -> String {
    invite.lines().find_map(|l| l.strip_prefix("c=IN IP4 ")).expect("an SDP c= line").trim().to_owned()
}

/// `callmesh all` on `0.0.0.0`, routing 1xxx to `callee`; `sip` and `media` add settings.
fn listening_everywhere(callee: &RawSip, sip: &str, media: &str) -> Callmesh {
    let port = testkit::ports::free_local_addr().port();
    Callmesh::all_in_one(&format!(
        "[sip]\nlisten = \"0.0.0.0:{port}\"\n{sip}\n[media]\nbind = \"0.0.0.0\"\n{media}\n[[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{}\"\n",
        callee.addr
    ))
}

#[test]
fn the_interface_address_replaces_the_unspecified_one() {
    let (caller, callee) = (RawSip::bind(), RawSip::bind());
    let cm = listening_everywhere(&callee, "", "");
    let invite = forwarded_invite(&cm, &caller, &callee, "advertise-1");
    let expected = advertised_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).to_string();
    assert_ne!(expected, "0.0.0.0");
    assert_eq!(via_host(&invite), expected, "{invite}");
    assert_eq!(contact_host(&invite), expected, "{invite}");
    assert_eq!(sdp_address(&invite), expected, "{invite}");
    assert!(cm.output().contains(&format!("(advertised as {expected})")), "{}", cm.output());
}

#[test]
fn configured_addresses_win() {
    let (caller, callee) = (RawSip::bind(), RawSip::bind());
    let cm = listening_everywhere(&callee, "advertise = \"sip.example.com\"", "advertise = \"198.51.100.20\"");
    let invite = forwarded_invite(&cm, &caller, &callee, "advertise-2");
    assert_eq!(via_host(&invite), "sip.example.com", "{invite}");
    assert_eq!(contact_host(&invite), "sip.example.com", "{invite}");
    assert_eq!(sdp_address(&invite), "198.51.100.20", "{invite}");
}
