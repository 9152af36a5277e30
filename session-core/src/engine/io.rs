//! What goes into the call engine and what comes out of it. Inputs carry their data; outputs
//! say exactly what a driver must do (send this message there, ask the media plane for that)
//! and nothing about how. A driver is the session node (SIP through edges over the bus) or
//! the SDK (SIP through its own endpoint); both only move bytes, timers and media commands.

use std::net::SocketAddr;

use sip::message::Message;
use sip::transaction::Peer;

/// A leg of a call: 0 is the leg that created it (the caller, or the SDK's own call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

/// Where a leg's SIP goes: through which edge (empty in the SDK, which sends itself) to
/// which address (the far end, or the flow its registration came over).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub edge: String,
    pub peer: Peer,
}

/// A server transaction of a driver: the request it belongs to is answered through it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerTx {
    /// The edge that holds it (empty in the SDK).
    pub edge: String,
    pub id: u64,
}

/// SIP that arrived for the call.
#[derive(Debug, Clone)]
pub enum SipInput {
    /// A request in one of the call's dialogs (or CANCEL-free INVITE handling: see
    /// [`super::Engine::incoming`] for the first INVITE).
    Request { tx: ServerTx, request: Message, from: Peer },
    /// The ACK for a 2xx we sent.
    Ack { request: Message },
    /// The caller cancelled the INVITE on `tx` (its 200 to CANCEL was sent by the driver).
    Cancelled { tx: ServerTx },
    /// A response to a request we sent, by the key of its [`Output::Send`].
    Response { key: u64, response: Message },
    /// A request we sent got no final response (timeout) or could not be sent.
    Failed { key: u64, reason: Failure },
    /// Our 2xx to the INVITE on `tx` was never acknowledged (RFC 3261 Timer H).
    AckTimeout { tx: ServerTx },
}

/// Why a request of ours failed without a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Transport,
}

/// What the media plane reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaInput {
    /// The RTP endpoints of the call: one per media slot (0: the caller's side, 1: the
    /// side it is bridged to), on media node `node`.
    Allocated { node: String, slots: Vec<SocketAddr> },
    /// No media could be had (the caller gets 503).
    Unavailable { reason: String },
    /// A slot received no RTP for a while.
    NoRtp { slot: u32 },
    /// The far end on `slot` sent an RFC 4733 digit its partner cannot receive as such.
    Dtmf { slot: u32, digit: char, duration_ms: u32 },
}

/// What an application (the router's decision, an API, the SDK's user) asks of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Call `targets` for the caller: all at once (`parallel`) or one after the other.
    Dial {
        targets: Vec<Target>,
        parallel: bool,
        ring: RingPolicy,
    },
    /// Answer the caller ourselves (a call accepted on a ring timeout, a queue).
    Answer,
    /// Refuse the caller.
    Reject {
        status: u16,
        reason: String,
    },
    /// End every leg.
    Hangup,
    // A local call's (the SDK's: see `Engine::answering` and `Engine::calling`).
    /// Refuse the caller with a redirection (3xx) to `contact`.
    Redirect {
        status: u16,
        contact: String,
    },
    /// Before answering: 183 Session Progress with our answer, and our media set up, so the
    /// caller hears us before the call is taken (early media).
    EarlyMedia,
    /// The relay's media node is gone: allocate a new relay and re-offer every leg that is
    /// up an address on it (relayed calls).
    Reanchor,
    /// Offer again in a re-INVITE: holding the far end (`sendonly`) or not.
    Reoffer {
        hold: bool,
    },
    /// A local call's media moved to `rtp` (its seat on a media node that died, taken
    /// again on another): the far end is offered the new address in a re-INVITE (once the
    /// ACK is in, for a call answered but not yet acknowledged).
    MoveMedia {
        rtp: SocketAddr,
    },
    /// Take the far end's re-offer ([`CallEvent::Reoffered`]), or refuse it (488).
    AcceptReoffer,
    RejectReoffer,
    /// Ask the far end to call someone else (REFER with this `Refer-To` name-addr).
    Refer {
        refer_to: String,
    },
    /// Answer a [`CallEvent::TransferRequested`]: accept (202, NOTIFY 100 Trying; the
    /// application calls the target and reports with `TransferProgress`), accept without
    /// doing it (202 and a last NOTIFY), or refuse.
    AcceptTransfer,
    IgnoreTransfer,
    RejectTransfer {
        status: u16,
        reason: String,
    },
    /// How the call to the transfer target went (a NOTIFY; a final success ends our leg).
    TransferProgress {
        status: u16,
        reason: String,
    },
    /// The answer to [`Output::FindReplaced`]: whom to call instead of the replaced
    /// dialog's far end, or `None` when the dialog is not one of ours (the target is then
    /// called with the `Replaces` as it came).
    Replacement {
        found: Option<Replacement>,
    },
    /// Puts `leg` through to `target` (a blind transfer an operator asks for): whoever it
    /// talks to now is hung up at once, the target called for it; once the target answers,
    /// `leg` is re-offered the target's media. Relayed calls only.
    Transfer {
        leg: LegId,
        target: Target,
    },
}

/// A dialog named by a `Replaces` header (RFC 3891), as its sender sees it: the Call-ID,
/// the tag of the side the header goes to (`to-tag`), and the sender's own (`from-tag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
}

impl Replaces {
    /// `call-id;to-tag=…;from-tag=…` (other parameters ignored).
    pub fn parse(value: &str) -> Option<Replaces> {
        let mut parts = value.split(';').map(str::trim);
        let call_id = parts.next().filter(|c| !c.is_empty())?.to_owned();
        let (mut to_tag, mut from_tag) = (None, None);
        for part in parts {
            match part.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("to-tag") => to_tag = Some(v.trim().to_owned()),
                Some((k, v)) if k.trim().eq_ignore_ascii_case("from-tag") => from_tag = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        Some(Replaces { call_id, to_tag: to_tag?, from_tag: from_tag? })
    }
}

impl std::fmt::Display for Replaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{};to-tag={};from-tag={}", self.call_id, self.to_tag, self.from_tag)
    }
}

/// Who takes a replaced dialog's place (attended transfer through us): the far end of the
/// call it belongs to, and the `Replaces` that names that far end's dialog to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub target: Target,
    pub replaces: Replaces,
}

/// One target to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI.
    pub uri: String,
    /// Where to send the INVITE; `None` to resolve the URI's host.
    pub route: Option<Route>,
}

/// How long targets may ring, and what then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingPolicy {
    /// `None`: ring until the caller or the target gives up.
    pub timeout: Option<std::time::Duration>,
    pub on_timeout: OnTimeout,
}

impl Default for RingPolicy {
    fn default() -> Self {
        RingPolicy { timeout: None, on_timeout: OnTimeout::Reject }
    }
}

/// What a ring timeout does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnTimeout {
    /// 480 to the caller.
    Reject,
    /// Answer the caller (our own SDP answer from the anchor).
    Accept,
    /// Call this URI instead (voicemail).
    Divert(Target),
}

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Answer a request on a server transaction.
    Respond { tx: ServerTx, response: Message },
    /// Send a request (a client transaction); its responses come back with `key`.
    Send { key: u64, request: Message, route: Route },
    /// Send the ACK for a 2xx (no transaction). `invite_key` names the INVITE when it is the
    /// first one of a leg (the driver may stop waiting for its 2xx retransmissions).
    Ack { request: Message, route: Route, invite_key: Option<u64> },
    /// Cancel the INVITE sent with `key`.
    Cancel { key: u64 },
    /// Ask the media plane.
    Media(MediaOutput),
    /// Something an application may want to know.
    Event(CallEvent),
    /// The call's durable state changed: write [`super::Engine::snapshot`] before carrying
    /// out the outputs that follow.
    Persist,
    /// An attended transfer names a dialog with `Replaces`: find the call it belongs to
    /// (our tags name it) and answer with [`Command::Replacement`].
    FindReplaced(Replaces),
}

/// A media request.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaOutput {
    /// RTP endpoints for the call's slots; slot 0 is connected at once to the caller's
    /// media, when its INVITE offered some.
    Allocate { slots: u32, caller: Option<FarMedia> },
    /// Connect slot `slot` to the far end of the leg using it.
    Connect { slot: u32, far: FarMedia },
    /// Write a DTMF digit as RFC 4733 events toward the far end on `slot` (its partner sent
    /// it in SIP INFO).
    Dtmf { slot: u32, digit: char, duration_ms: u32 },
    /// Free the call's endpoints.
    Release,
    /// A local call's media: what offer/answer agreed (codec, where to send, direction).
    Local(media::sdp::Negotiated),
}

pub use media::sdp::FarMedia;

/// What happened in the call, for applications (and call records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A leg rings (or plays early media).
    Ringing { leg: LegId },
    /// A leg answered (outbound) or was answered (the caller).
    Answered { leg: LegId },
    /// Two legs talk to each other.
    Bridged { a: LegId, b: LegId },
    /// A leg ended, with the status that ended it (0 for a BYE).
    LegEnded { leg: LegId, status: u16 },
    /// A DTMF digit from a leg (SIP INFO).
    Dtmf { leg: LegId, digit: char },
    /// A transfer asked by `leg` (REFER): progress of the call to `target`.
    Transfer { leg: LegId, target: String, status: u16 },
    /// Every leg ended.
    Ended,
    // A local call's: what its user decides on, and how its own requests went.
    /// A call to us, its offer answerable: take it (`Command::Answer`) or not. `replaces`:
    /// it asks to replace one of our calls (RFC 3891).
    Offered { leg: LegId, replaces: Option<String> },
    /// The far end offers anew in a re-INVITE (`hold`: it puts us on hold); answer with
    /// `AcceptReoffer` or `RejectReoffer`.
    Reoffered { leg: LegId, hold: bool },
    /// Our re-INVITE's outcome (`Command::Reoffer`).
    Updated { leg: LegId, status: u16 },
    /// The far end asks us to call `target` (REFER); answer with a transfer command.
    TransferRequested { leg: LegId, target: String, replaces: Option<String>, referrer_domain: String },
    /// How the transfer we asked for goes: the REFER's refusal or the NOTIFYs' sipfrag.
    ReferProgress { leg: LegId, status: u16, reason: String, last: bool },
}
