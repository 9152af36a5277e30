//! A UAC on the Callmesh SIP stack: places N calls at a given rate (INVITE with an SDP
//! offer, ACK, optional hold, BYE) and prints how many succeeded. Exits non-zero if any
//! failed.
//!
//! `cargo run --release -p callmesh-sip --example uac -- 127.0.0.1:5070 --calls 100 --rate 50`

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use sip::dialog::Dialog;
use sip::endpoint::{Endpoint, EndpointConfig, EndpointHandle, peer_for_uri};
use sip::message::{Builder, HeaderName, Message, Method};
use sip::transaction::{Event, Peer, TransportKind, TxId, new_tag};
use tokio::time::{Instant, MissedTickBehavior};

#[derive(Parser)]
struct Args {
    /// The UAS to call (`ip:port`).
    target: SocketAddr,
    #[arg(long, default_value_t = 1)]
    calls: u64,
    /// Calls started per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    #[arg(long, value_parser = ["udp", "tcp"], default_value = "udp")]
    transport: String,
    /// How long each call stays up before BYE.
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    #[arg(long, default_value = "127.0.0.1:0")]
    local: SocketAddr,
    /// User part of the Request-URI.
    #[arg(long, default_value = "service")]
    user: String,
    /// Give up on calls still running after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
    /// Keep the transports open this long after the last call, so that peers finish their
    /// own closing timers before a TCP connection goes away.
    #[arg(long, default_value_t = 0)]
    linger_ms: u64,
}

struct Call {
    invite: Message,
    dialog: Option<Dialog>,
}

enum TxRole {
    Invite(usize),
    Bye,
}

fn offer(ip: std::net::IpAddr) -> String {
    format!("v=0\r\no=uac 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}

fn invite(args: &Args, handle: &EndpointHandle, kind: TransportKind, n: u64) -> Message {
    let local = handle.local_addr(kind).expect("transport bound");
    let transport = kind.via_name().to_ascii_lowercase();
    Builder::request(&Method::Invite, format!("sip:{}@{};transport={transport}", args.user, args.target))
        .header(HeaderName::Via, handle.via(kind))
        .header(HeaderName::MaxForwards, 70)
        .header(HeaderName::From, format!("<sip:uac@{local}>;tag={}", new_tag()))
        .header(HeaderName::To, format!("<sip:{}@{}>", args.user, args.target))
        .header(HeaderName::CallId, format!("{n}-{}@{}", new_tag(), local.ip()))
        .header(HeaderName::CSeq, "1 INVITE")
        .header(HeaderName::Contact, format!("<sip:uac@{local};transport={transport}>"))
        .body("application/sdp", offer(local.ip()))
        .build()
        .expect("INVITE is valid")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let kind = if args.transport == "tcp" { TransportKind::Tcp } else { TransportKind::Udp };
    let config =
        EndpointConfig { udp: Some(args.local), tcp: (kind == TransportKind::Tcp).then_some(args.local), ..Default::default() };
    let mut endpoint = Endpoint::bind(config).await?;
    let handle = endpoint.handle();
    let target = Peer { transport: kind, addr: args.target };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_s);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(0.001)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let (mut calls, mut roles) = (Vec::<Call>::new(), HashMap::<TxId, TxRole>::new());
    let mut byes: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let (mut successful, mut failed) = (0u64, 0u64);
    while successful + failed < args.calls && Instant::now() < deadline {
        let next_bye = byes.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            _ = ticker.tick(), if (calls.len() as u64) < args.calls => {
                let request = invite(&args, &handle, kind, calls.len() as u64);
                match handle.send_request(request.clone(), target).await {
                    Ok(tx) => {
                        roles.insert(tx, TxRole::Invite(calls.len()));
                        calls.push(Call { invite: request, dialog: None });
                    }
                    Err(e) => {
                        eprintln!("INVITE not sent: {e}");
                        failed += 1;
                        calls.push(Call { invite: request, dialog: None });
                    }
                }
            }
            _ = tokio::time::sleep_until(next_bye.unwrap_or(deadline)), if next_bye.is_some() => {
                let Some(Reverse((_, i))) = byes.pop() else { continue };
                let Some(dialog) = calls[i].dialog.as_mut() else { continue };
                let peer = peer_for_uri(dialog.next_hop(), kind).unwrap_or(target);
                let bye = dialog.request(Method::Bye, Some(&handle.via(peer.transport))).build().expect("BYE is valid");
                match handle.send_request(bye, peer).await {
                    Ok(tx) => { roles.insert(tx, TxRole::Bye); }
                    Err(_) => failed += 1,
                }
            }
            event = endpoint.next_event_within(deadline - Instant::now()) => {
                let Some(event) = event else { continue };
                match event {
                    Event::Response { tx, response } => match (roles.get(&tx), response.status().unwrap_or(0)) {
                        (Some(TxRole::Invite(i)), 200..=299) => {
                            let i = *i;
                            if calls[i].dialog.is_some() {
                                continue;
                            }
                            let Ok(dialog) = Dialog::uac(&calls[i].invite, &response) else { failed += 1; continue };
                            let peer = peer_for_uri(dialog.next_hop(), kind).unwrap_or(target);
                            let ack = dialog.ack(1, Some(&handle.via(peer.transport))).build().expect("ACK is valid");
                            let _ = handle.send_ack(Some(tx), ack, peer);
                            calls[i].dialog = Some(dialog);
                            byes.push(Reverse((Instant::now() + Duration::from_millis(args.hold_ms), i)));
                        }
                        (Some(TxRole::Invite(_)), 300..) => {
                            roles.remove(&tx);
                            failed += 1;
                        }
                        (Some(TxRole::Bye), 200..) => {
                            if response.status().is_some_and(|c| c < 300) { successful += 1 } else { failed += 1 }
                            roles.remove(&tx);
                        }
                        _ => {}
                    },
                    Event::Timeout { tx } | Event::TransportError { tx } if roles.remove(&tx).is_some() => failed += 1,
                    _ => {}
                }
            }
        }
    }
    let unfinished = args.calls - successful - failed;
    let s = handle.stats().await.unwrap_or_default();
    println!(
        "uac result calls={} successful={successful} failed={} elapsed_ms={} retransmissions_sent={}",
        args.calls,
        failed + unfinished,
        started.elapsed().as_millis(),
        s.transactions.retransmissions_sent
    );
    tokio::time::sleep(Duration::from_millis(args.linger_ms)).await;
    std::process::exit(if failed + unfinished == 0 { 0 } else { 1 });
}
