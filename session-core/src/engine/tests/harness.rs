//! A call engine and the phones around it, on a virtual clock. The harness plays the
//! driver (it stamps a Via on what the engine sends, as an edge does, and keeps the media
//! plane's answers ready) and the phones: a caller that sent the first INVITE and callees
//! that answer what reaches them. Nothing sleeps: time moves when a test says so.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip::dialog::Dialog;
use sip::message::{Builder, HeaderName, HostPort, Message, Method, Transport, Via};
use sip::transaction::Peer;

use crate::engine::{
    CALLER, CallEvent, Command, Engine, EngineConfig, FarMedia, LegId, MediaInput, MediaOutput, Output, Replaces, RingPolicy,
    Route, ServerTx, SipInput, Target,
};

pub const RELAY: [&str; 2] = ["192.0.2.100:30000", "192.0.2.100:30002"];

/// SDP of a phone whose RTP is at `rtp` (PCMU).
pub fn phone_sdp(rtp: &str, direction: &str) -> String {
    let addr: SocketAddr = rtp.parse().unwrap();
    format!(
        "v=0\r\no=phone 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

/// What the engine sent out, kept for the test to look at.
#[derive(Debug, Clone)]
pub enum Sent {
    /// A request to a leg's far end, with the key its responses come back with.
    Request {
        key: u64,
        request: Message,
    },
    /// A response on a server transaction.
    Response {
        tx: u64,
        response: Message,
    },
    Ack(Message),
    Cancel(u64),
}

/// The engine, the clock, and everything said so far.
pub struct Sim {
    pub engine: Engine,
    pub now: Instant,
    pub sent: VecDeque<Sent>,
    pub media: Vec<MediaOutput>,
    pub events: Vec<CallEvent>,
    pub persisted: usize,
    /// Dialogs the engine asked the driver to find (attended transfers).
    pub lookups: Vec<Replaces>,
    pub caller_invite: Message,
    next_tx: u64,
}

pub fn via(branch: &str) -> Via {
    Via::new(Transport::Udp, HostPort::parse("198.51.100.1:5060").unwrap(), branch)
}

fn route() -> Route {
    Route { edge: "edge-1".into(), peer: Peer::udp("198.51.100.1:5060".parse().unwrap()) }
}

/// The caller's INVITE to `user`, offering RTP at 198.51.100.1:4000.
pub fn caller_invite(user: &str) -> Message {
    Builder::request(&Method::Invite, format_args!("sip:{user}@192.0.2.1"))
        .header(HeaderName::Via, via("z9hG4bK-caller-1"))
        .header(HeaderName::MaxForwards, 70)
        .header(HeaderName::From, "<sip:alice@198.51.100.1>;tag=alice-1")
        .header(HeaderName::To, format_args!("<sip:{user}@192.0.2.1>"))
        .header(HeaderName::CallId, "call-1@198.51.100.1")
        .header(HeaderName::CSeq, "1 INVITE")
        .header(HeaderName::Contact, "<sip:alice@198.51.100.1:5060>")
        .body("application/sdp", phone_sdp("198.51.100.1:4000", "sendrecv"))
        .build()
        .unwrap()
}

/// Alice's INVITE to 1000 with `sdp` and more headers.
pub fn invite_from_alice(sdp: &str, headers: &[(HeaderName, &str)]) -> Message {
    let mut b = Builder::request(&Method::Invite, "sip:1000@192.0.2.1")
        .header(HeaderName::Via, via("z9hG4bK-caller-1"))
        .header(HeaderName::From, "<sip:alice@198.51.100.1>;tag=alice-1")
        .header(HeaderName::To, "<sip:1000@192.0.2.1>")
        .header(HeaderName::CallId, "call-1@198.51.100.1")
        .header(HeaderName::CSeq, "1 INVITE")
        .header(HeaderName::Contact, "<sip:alice@198.51.100.1:5060>");
    for (name, value) in headers {
        b = b.header(*name, value);
    }
    b.body("application/sdp", sdp.to_owned()).build().unwrap()
}

pub fn target(uri: &str) -> Target {
    Target { uri: uri.into(), route: None }
}

impl Sim {
    /// A call from alice to `user`; media is allocated at once.
    pub fn new(user: &str) -> Sim {
        let mut sim = Sim::from_invite(caller_invite(user));
        let now = sim.now;
        assert!(matches!(sim.media.first(), Some(MediaOutput::Allocate { slots: 2, .. })), "{:?}", sim.media);
        sim.engine.handle_media(
            MediaInput::Allocated { node: "media-1".into(), slots: RELAY.iter().map(|a| a.parse().unwrap()).collect() },
            now,
        );
        sim.drain();
        sim
    }

    /// A call made by `invite`, its first outputs drained (media asked for, or a refusal).
    pub fn from_invite(invite: Message) -> Sim {
        let now = Instant::now();
        let config = EngineConfig { session: "s1".into(), contact: "sip:s1@192.0.2.1:5060".into(), sdp_user: "callmesh".into() };
        let engine = Engine::incoming(config, invite.clone(), ServerTx { edge: "edge-1".into(), id: 1 }, route(), now);
        Sim::around(engine, invite, now)
    }

    /// A driver around `engine`, its outputs drained.
    pub fn around(engine: Engine, caller_invite: Message, now: Instant) -> Sim {
        let mut sim = Sim {
            engine,
            now,
            sent: VecDeque::new(),
            media: Vec::new(),
            events: Vec::new(),
            persisted: 0,
            lookups: Vec::new(),
            caller_invite,
            next_tx: 100,
        };
        sim.drain();
        sim
    }

    /// A call from alice to the targets, rung as `parallel` says, with `ring`.
    pub fn dialing(targets: &[&str], parallel: bool, ring: RingPolicy) -> Sim {
        let mut sim = Sim::new("1000");
        let targets = targets.iter().map(|t| target(t)).collect();
        sim.command(Command::Dial { targets, parallel, ring });
        sim
    }

    /// Takes everything the engine has to say.
    pub fn drain(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Respond { tx, response } => self.sent.push_back(Sent::Response { tx: tx.id, response }),
                Output::Send { key, request, .. } => {
                    let request = request.with_top_via(&via(&format!("z9hG4bK-edge-{key}"))).unwrap();
                    self.sent.push_back(Sent::Request { key, request });
                }
                Output::Ack { request, .. } => self.sent.push_back(Sent::Ack(request)),
                Output::Cancel { key } => self.sent.push_back(Sent::Cancel(key)),
                Output::Media(m) => self.media.push(m),
                Output::Event(e) => self.events.push(e),
                Output::Persist => self.persisted += 1,
                Output::FindReplaced(r) => self.lookups.push(r),
            }
        }
    }

    pub fn command(&mut self, c: Command) {
        self.engine.handle_command(c, self.now);
        self.drain();
    }

    pub fn sip(&mut self, input: SipInput) {
        self.engine.handle_sip(input, self.now);
        self.drain();
    }

    /// Moves the clock on by `by`, running the timers that fall due.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.engine.poll_timeout().filter(|at| *at <= until) {
            self.now = at.max(self.now);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    /// The next request sent (skipping what else was sent before it), by method.
    pub fn take_request(&mut self, method: Method) -> (u64, Message) {
        let i = self.sent.iter().position(|s| matches!(s, Sent::Request { request, .. } if request.method() == Some(&method)));
        let i = i.unwrap_or_else(|| panic!("no {method} sent; sent: {:#?}", self.sent));
        match self.sent.remove(i) {
            Some(Sent::Request { key, request }) => (key, request),
            _ => unreachable!(),
        }
    }

    /// The next response sent on server transaction `tx`.
    pub fn take_response(&mut self, tx: u64) -> Message {
        let i = self.sent.iter().position(|s| matches!(s, Sent::Response { tx: t, .. } if *t == tx));
        let i = i.unwrap_or_else(|| panic!("no response on tx {tx}; sent: {:#?}", self.sent));
        match self.sent.remove(i) {
            Some(Sent::Response { response, .. }) => response,
            _ => unreachable!(),
        }
    }

    /// Statuses sent on `tx` so far (taking them).
    pub fn statuses(&mut self, tx: u64) -> Vec<u16> {
        let mut out = Vec::new();
        while let Some(i) = self.sent.iter().position(|s| matches!(s, Sent::Response { tx: t, .. } if *t == tx)) {
            if let Some(Sent::Response { response, .. }) = self.sent.remove(i) {
                out.push(response.status().unwrap_or(0));
            }
        }
        out
    }

    pub fn take_ack(&mut self) -> Message {
        let i = self.sent.iter().position(|s| matches!(s, Sent::Ack(_))).unwrap_or_else(|| panic!("no ACK: {:#?}", self.sent));
        match self.sent.remove(i) {
            Some(Sent::Ack(a)) => a,
            _ => unreachable!(),
        }
    }

    pub fn cancelled(&mut self, key: u64) -> bool {
        let i = self.sent.iter().position(|s| matches!(s, Sent::Cancel(k) if *k == key));
        i.map(|i| self.sent.remove(i)).is_some()
    }

    /// A far end's response to the request sent with `key`.
    pub fn respond(&mut self, key: u64, request: &Message, status: u16, tag: &str, sdp: Option<String>) -> Message {
        let mut b = Builder::response_to(request, status, "", Some(tag));
        if request.method() == Some(&Method::Invite) && (101..300).contains(&status) {
            b = b.header(HeaderName::Contact, format_args!("<sip:{tag}@203.0.113.5:5060>"));
        }
        if let Some(sdp) = sdp {
            b = b.body("application/sdp", sdp);
        }
        let response = b.build().unwrap();
        self.sip(SipInput::Response { key, response: response.clone() });
        response
    }

    /// A request from a far end in its dialog (`dialog` is the far end's view), on a new
    /// server transaction whose id is returned.
    pub fn request_in(&mut self, dialog: &mut Dialog, method: Method, body: Option<(&str, String)>) -> (u64, Message) {
        let tx = self.next_tx;
        self.next_tx += 1;
        let mut b = dialog.request(method, Some(&via(&format!("z9hG4bK-far-{tx}"))));
        if let Some((t, s)) = body {
            b = b.body(t, s);
        }
        let request = b.build().unwrap();
        let from = Peer::udp("203.0.113.5:5060".parse().unwrap());
        self.sip(SipInput::Request { tx: ServerTx { edge: "edge-1".into(), id: tx }, request: request.clone(), from });
        (tx, request)
    }

    /// A fresh server transaction id.
    pub fn next_tx(&mut self) -> u64 {
        self.next_tx += 1;
        self.next_tx - 1
    }

    /// A request with extra headers (REFER).
    pub fn request_with(&mut self, dialog: &mut Dialog, method: Method, headers: &[(HeaderName, &str)]) -> (u64, Message) {
        let tx = self.next_tx;
        self.next_tx += 1;
        let mut b = dialog.request(method, Some(&via(&format!("z9hG4bK-far-{tx}"))));
        for (name, value) in headers {
            b = b.header(*name, value);
        }
        let request = b.build().unwrap();
        let from = Peer::udp("203.0.113.5:5060".parse().unwrap());
        self.sip(SipInput::Request { tx: ServerTx { edge: "edge-1".into(), id: tx }, request: request.clone(), from });
        (tx, request)
    }

    /// The caller's dialog, from its 2xx.
    pub fn caller_dialog(&self, ok: &Message) -> Dialog {
        Dialog::uac(&self.caller_invite, ok).unwrap()
    }

    /// The caller acknowledges the 2xx.
    pub fn caller_acks(&mut self, dialog: &Dialog) {
        let ack = dialog.ack(1, Some(&via("z9hG4bK-caller-ack"))).build().unwrap();
        self.sip(SipInput::Ack { request: ack });
    }

    /// A callee's dialog, from the INVITE it got and the tag it answered with.
    pub fn callee_dialog(invite: &Message, tag: &str) -> Dialog {
        let mut d = Dialog::uas(invite, tag).unwrap();
        d.confirm();
        d
    }

    /// A call answered by "bob" and acknowledged by alice: the callee's INVITE and key, and
    /// both far ends' dialogs.
    pub fn answered() -> (Sim, Dialog, Dialog) {
        let mut sim = Sim::dialing(&["sip:bob@203.0.113.5"], true, RingPolicy::default());
        let (key, invite) = sim.take_request(Method::Invite);
        sim.respond(key, &invite, 200, "bob", Some(phone_sdp("203.0.113.5:5000", "sendrecv")));
        sim.take_ack();
        let ok = sim.take_response(1);
        assert_eq!(ok.status(), Some(200));
        let alice = sim.caller_dialog(&ok);
        sim.caller_acks(&alice);
        (sim, alice, Sim::callee_dialog(&invite, "bob"))
    }

    pub fn leg(&self, n: u32) -> crate::leg::LegState {
        self.engine.leg_state(LegId(n)).unwrap()
    }

    pub fn caller(&self) -> crate::leg::LegState {
        self.leg(CALLER.0)
    }
}

/// The SDP body of a message, as text.
/// A phone's media at `rtp` as the relay is told of it: RFC 4733 on 101, 8 kHz audio, its
/// SIP from the same host.
pub fn far(rtp: &str) -> FarMedia {
    let rtp: SocketAddr = rtp.parse().unwrap();
    FarMedia { rtp, events: Some(101), signal: Some(rtp.ip()), clock_rate: 8000, codecs: vec![media::sdp::Codec::pcmu()] }
}

/// The relay told to connect `slot` to the phone at `rtp` (see [`far`]).
pub fn connect(slot: u32, rtp: &str) -> MediaOutput {
    MediaOutput::Connect { slot, far: far(rtp) }
}

pub fn body(m: &Message) -> String {
    String::from_utf8_lossy(m.body()).into_owned()
}
