//! A UAC and a UAS, each a transaction layer plus a minimal transaction user with dialogs,
//! place and end a call across a simulated link with latency and heavy loss, on a virtual
//! clock. Retransmissions (Timers A, E, G and the 2xx/ACK dance) must get every call
//! through.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sip::dialog::Dialog;
use sip::dialog::forking::{DialogUpdate, UacDialogs};
use sip::message::{Builder, HeaderName, HostPort, Method, Transport, Via};
use sip::transaction::{Config, Event, Peer, TransactionLayer, TxId, new_branch};

const UAC: &str = "10.0.0.1:5060";
const UAS: &str = "10.0.0.2:5060";

/// A link that delays every datagram and drops a share of them (deterministic xorshift).
struct Link {
    in_flight: Vec<(Instant, bool, Bytes)>,
    rng: u64,
    loss_percent: u64,
    latency: Duration,
    dropped: u32,
}

impl Link {
    fn send(&mut self, now: Instant, to_uas: bool, payload: Bytes) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng % 100 < self.loss_percent {
            self.dropped += 1;
        } else {
            self.in_flight.push((now + self.latency, to_uas, payload));
        }
    }
}

fn via(addr: &str) -> Via {
    Via::new(Transport::Udp, HostPort::parse(addr).unwrap(), &new_branch())
}

#[derive(Default)]
struct Uac {
    invite_tx: Option<TxId>,
    dialogs: Option<UacDialogs>,
    dialog: Option<Dialog>,
    bye_tx: Option<TxId>,
    done: bool,
    failed: Option<String>,
}

impl Uac {
    fn start(&mut self, layer: &mut TransactionLayer, now: Instant) {
        let invite = Builder::request(&Method::Invite, format!("sip:bob@{UAS}"))
            .header(HeaderName::Via, via(UAC))
            .header(HeaderName::MaxForwards, 70)
            .header(HeaderName::From, "<sip:alice@10.0.0.1>;tag=alice")
            .header(HeaderName::To, "<sip:bob@10.0.0.2>")
            .header(HeaderName::CallId, "lossy-call")
            .header(HeaderName::CSeq, "1 INVITE")
            .header(HeaderName::Contact, format!("<sip:alice@{UAC}>"))
            .build()
            .unwrap();
        self.dialogs = Some(UacDialogs::new(invite.clone()));
        self.invite_tx = Some(layer.send_request(invite, Peer::udp(UAS.parse().unwrap()), now).unwrap());
    }

    fn on_event(&mut self, layer: &mut TransactionLayer, event: Event, now: Instant) {
        let peer = Peer::udp(UAS.parse::<SocketAddr>().unwrap());
        match event {
            Event::Response { tx, response } if Some(tx) == self.invite_tx => {
                let set = self.dialogs.as_mut().unwrap();
                if let DialogUpdate::Confirmed(tag) = set.on_response(&response).unwrap() {
                    let dialog = set.get(&tag).unwrap().clone();
                    let ack = dialog.ack(1, Some(&via(UAC))).build().unwrap();
                    layer.send_ack(Some(tx), &ack, peer);
                    let mut dialog = dialog;
                    let bye = dialog.request(Method::Bye, Some(&via(UAC))).build().unwrap();
                    self.bye_tx = Some(layer.send_request(bye, peer, now).unwrap());
                    self.dialog = Some(dialog);
                } else if response.status().unwrap() >= 300 {
                    self.failed = Some(format!("INVITE failed: {}", response.status().unwrap()));
                }
            }
            Event::Response { tx, response } if Some(tx) == self.bye_tx && response.status() == Some(200) => self.done = true,
            Event::Timeout { tx } | Event::TransportError { tx } => self.failed = Some(format!("{tx} timed out")),
            _ => {}
        }
    }
}

#[derive(Default)]
struct Uas {
    dialog: Option<Dialog>,
    acked: bool,
    bye_answered: bool,
}

impl Uas {
    fn on_event(&mut self, layer: &mut TransactionLayer, event: Event, now: Instant) {
        match event {
            Event::Request { tx, request, .. } if request.method() == Some(&Method::Invite) => {
                let ringing = Builder::response_to(&request, 180, "", Some("bob")).build().unwrap();
                layer.respond(tx, ringing, now).unwrap();
                let ok = Builder::response_to(&request, 200, "", Some("bob"))
                    .header(HeaderName::Contact, format!("<sip:bob@{UAS}>"))
                    .build()
                    .unwrap();
                layer.respond(tx, ok, now).unwrap();
                self.dialog = Some(Dialog::uas(&request, "bob").unwrap());
            }
            Event::Ack { request, .. } => {
                let d = self.dialog.as_mut().unwrap();
                assert!(d.matches(&request));
                d.confirm();
                self.acked = true;
            }
            Event::Request { tx, request, .. } if request.method() == Some(&Method::Bye) => {
                self.dialog.as_mut().unwrap().on_request(&request).unwrap();
                layer.respond(tx, Builder::response_to(&request, 200, "", None).build().unwrap(), now).unwrap();
                self.bye_answered = true;
            }
            _ => {}
        }
    }
}

/// Runs one call; returns (completed, datagrams dropped, virtual seconds taken).
fn run_call(seed: u64, loss_percent: u64) -> (Uac, Uas, u32, f64) {
    let t0 = Instant::now();
    let mut now = t0;
    let (mut a, mut b) = (TransactionLayer::new(Config::default()), TransactionLayer::new(Config::default()));
    let (mut uac, mut uas) = (Uac::default(), Uas::default());
    let mut link = Link { in_flight: vec![], rng: seed | 1, loss_percent, latency: Duration::from_millis(30), dropped: 0 };
    uac.start(&mut a, now);
    while now < t0 + Duration::from_secs(120) {
        // Settle everything that happens at `now`.
        loop {
            let mut progressed = false;
            while let Some(t) = a.poll_transmit() {
                link.send(now, true, t.payload);
                progressed = true;
            }
            while let Some(t) = b.poll_transmit() {
                link.send(now, false, t.payload);
                progressed = true;
            }
            while let Some(e) = a.poll_event() {
                uac.on_event(&mut a, e, now);
                progressed = true;
            }
            while let Some(e) = b.poll_event() {
                uas.on_event(&mut b, e, now);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        if uac.done || uac.failed.is_some() {
            break;
        }
        let next_delivery = link.in_flight.iter().map(|m| m.0).min();
        let Some(next) = [next_delivery, a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min() else { break };
        now = next.max(now);
        let (due, later): (Vec<_>, Vec<_>) = link.in_flight.drain(..).partition(|m| m.0 <= now);
        link.in_flight = later;
        for (_, to_uas, payload) in due {
            if to_uas {
                b.handle_datagram(payload, Peer::udp(UAC.parse().unwrap()), now);
            } else {
                a.handle_datagram(payload, Peer::udp(UAS.parse().unwrap()), now);
            }
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    let dropped = link.dropped;
    (uac, uas, dropped, (now - t0).as_secs_f64())
}

#[test]
fn calls_complete_across_a_link_losing_a_quarter_of_all_datagrams() {
    let mut total_dropped = 0;
    for seed in 1..=40u64 {
        let (uac, uas, dropped, secs) = run_call(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), 25);
        assert!(uac.done, "seed {seed}: call did not complete ({:?}) after {secs}s", uac.failed);
        assert!(uas.bye_answered, "seed {seed}: UAS never saw the BYE");
        assert!(uac.dialog.is_some());
        total_dropped += dropped;
    }
    assert!(total_dropped > 40, "the link really lost datagrams ({total_dropped})");
}

#[test]
fn a_clean_link_needs_no_retransmission() {
    let (uac, uas, dropped, secs) = run_call(7, 0);
    assert!(uac.done && uas.acked && uas.bye_answered);
    assert_eq!(dropped, 0);
    assert!(secs < 0.2, "INVITE/200/ACK/BYE/200 over 30 ms latency took {secs}s");
}

#[test]
fn a_dead_link_times_out_the_invite() {
    let (uac, _, _, secs) = run_call(3, 100);
    assert!(!uac.done);
    assert!(uac.failed.is_some());
    assert_eq!(secs, 32.0, "Timer B at 64*T1");
}
