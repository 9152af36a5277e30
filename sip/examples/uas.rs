//! A UAS on the Callmesh SIP stack: answers INVITE with 200 (echoing the SDP offer, after an
//! optional ringing delay), handles ACK, BYE, CANCEL and OPTIONS, and prints its counters
//! when stopped (SIGTERM or Ctrl-C).
//!
//! `cargo run --release -p callmesh-sip --example uas -- --listen 127.0.0.1:5070`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use sip::endpoint::{Endpoint, EndpointConfig, EndpointHandle};
use sip::message::validate::ServerProfile;
use sip::message::{Builder, HeaderName, Message, Method};
use sip::transaction::{Event, Peer, TxId, new_tag};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
struct Args {
    /// Address for UDP and TCP.
    #[arg(long, default_value = "127.0.0.1:5070")]
    listen: SocketAddr,
    /// Send 180 and wait this long before answering (0: answer at once).
    #[arg(long, default_value_t = 0)]
    answer_after_ms: u64,
}

#[derive(Default, Debug)]
struct Counters {
    invites: u64,
    acks: u64,
    byes: u64,
    cancelled: u64,
    options: u64,
    ack_timeouts: u64,
}

fn answer(request: &Message, status: u16, tag: &str, peer: Peer, handle: &EndpointHandle) -> Message {
    let local = handle.local_addr(peer.transport).unwrap_or(peer.addr);
    let transport = peer.transport.via_name().to_ascii_lowercase();
    let mut b = Builder::response_to(request, status, "", Some(tag));
    if status < 300 && request.method() == Some(&Method::Invite) {
        b = b.header(HeaderName::Contact, format!("<sip:uas@{local};transport={transport}>"));
    }
    if request.method() == Some(&Method::Options) {
        b = b.header(HeaderName::Allow, "INVITE, ACK, BYE, CANCEL, OPTIONS").header(HeaderName::Accept, "application/sdp");
    }
    match (status, request.content_type()) {
        (200, Some(ct)) if request.method() == Some(&Method::Invite) && ct.starts_with("application/sdp") => {
            b = b.body("application/sdp", request.body_bytes());
        }
        _ => {}
    }
    b.build().expect("responses built from a parsed request are valid")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut config = EndpointConfig::udp_and_tcp(args.listen);
    config.transactions.profile = ServerProfile {
        allowed: vec![Method::Invite, Method::Ack, Method::Bye, Method::Cancel, Method::Options],
        ..Default::default()
    };
    let mut endpoint = Endpoint::bind(config).await?;
    let handle = endpoint.handle();
    println!(
        "uas listening udp={} tcp={}",
        handle.local_addr(sip::transaction::TransportKind::Udp).unwrap(),
        handle.local_addr(sip::transaction::TransportKind::Tcp).unwrap()
    );
    let mut term = signal(SignalKind::terminate())?;
    let mut counters = Counters::default();
    // INVITEs waiting for their delayed answer, by transaction (for CANCEL → 487).
    let mut ringing: HashMap<TxId, (Message, String, Peer)> = HashMap::new();
    let (answer_due_tx, mut answer_due) = tokio::sync::mpsc::unbounded_channel::<TxId>();
    loop {
        tokio::select! {
            event = endpoint.next_event() => {
                let Some(event) = event else { break };
                match event {
                    Event::Request { tx, request, peer } => match request.method() {
                        Some(Method::Invite) => {
                            counters.invites += 1;
                            let tag = new_tag();
                            if args.answer_after_ms == 0 {
                                let _ = handle.respond(tx, answer(&request, 200, &tag, peer, &handle));
                            } else {
                                let _ = handle.respond(tx, answer(&request, 180, &tag, peer, &handle));
                                ringing.insert(tx, (request, tag, peer));
                                let due = answer_due_tx.clone();
                                let delay = Duration::from_millis(args.answer_after_ms);
                                tokio::spawn(async move {
                                    tokio::time::sleep(delay).await;
                                    let _ = due.send(tx);
                                });
                            }
                        }
                        Some(Method::Bye) => {
                            counters.byes += 1;
                            let _ = handle.respond(tx, answer(&request, 200, &new_tag(), peer, &handle));
                        }
                        Some(Method::Options) => {
                            counters.options += 1;
                            let _ = handle.respond(tx, answer(&request, 200, &new_tag(), peer, &handle));
                        }
                        _ => {
                            let _ = handle.respond(tx, answer(&request, 501, &new_tag(), peer, &handle));
                        }
                    },
                    Event::Cancelled { tx } => {
                        if let Some((request, tag, peer)) = ringing.remove(&tx) {
                            counters.cancelled += 1;
                            let _ = handle.respond(tx, answer(&request, 487, &tag, peer, &handle));
                        }
                    }
                    Event::Ack { .. } => counters.acks += 1,
                    Event::AckTimeout { .. } => counters.ack_timeouts += 1,
                    _ => {}
                }
            }
            Some(tx) = answer_due.recv() => {
                if let Some((request, tag, peer)) = ringing.remove(&tx) {
                    let _ = handle.respond(tx, answer(&request, 200, &tag, peer, &handle));
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let s = handle.stats().await.unwrap_or_default();
    let t = s.transactions;
    println!(
        "uas stats invites={} acks={} byes={} cancelled={} options={} ack_timeouts={} retransmissions_sent={} retransmissions_absorbed={} rejected={} dropped={}",
        counters.invites,
        counters.acks,
        counters.byes,
        counters.cancelled,
        counters.options,
        counters.ack_timeouts,
        t.retransmissions_sent,
        t.retransmissions_absorbed,
        t.requests_rejected,
        t.messages_dropped
    );
    Ok(())
}
