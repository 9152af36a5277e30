//! One leg of a call as the engine keeps it: its place in the leg state table, its SIP
//! dialog, the transactions it has open, and the session descriptions on each side of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use media::sdp::AnchorOrigin;
use sip::dialog::Dialog;
use sip::dialog::forking::UacDialogs;
use sip::message::Message;

use super::FarSdp;
use super::io::{LegId, Route, ServerTx};
use crate::leg::{LegMachine, LegState};

/// Which side of the leg we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegRole {
    /// The far end called us (we answer its INVITE).
    Uas,
    /// We call the far end.
    Uac,
}

/// A request of ours that waits for its final response.
#[derive(Debug, Clone)]
pub enum Pending {
    /// The leg's INVITE.
    Invite,
    /// A re-INVITE with this CSeq.
    Reinvite(u32),
    Bye,
    /// A request relayed for the far end of another leg, answered on `tx`.
    Relayed {
        tx: ServerTx,
        request: Box<Message>,
    },
    /// A NOTIFY of transfer progress.
    Notify,
    /// Our REFER (a local call's transfer).
    Refer,
    /// Our PRACK for a reliable provisional response (RFC 3262).
    Prack,
    /// Our session refresh (an UPDATE, RFC 4028).
    Refresh,
    /// Our INFO carrying a digit read from the partner's RTP.
    Info,
}

/// A request from the far end that waits for our answer.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub tx: ServerTx,
    pub request: Message,
}

/// One leg.
#[derive(Debug, Clone)]
pub struct Leg {
    pub id: LegId,
    pub role: LegRole,
    pub machine: LegMachine,
    /// Our tag in its dialog (it names the call and the leg: see [`super::leg_tag`]).
    pub tag: String,
    pub route: Route,
    /// The media slot whose relay address this leg's far end sends to.
    pub slot: u32,
    /// UAS: the INVITE and its server transaction. UAC: the INVITE we sent.
    pub invite: Option<Message>,
    pub invite_tx: Option<ServerTx>,
    /// UAC: where we call, and the key of our INVITE.
    pub target: String,
    pub invite_key: Option<u64>,
    /// UAC: the early dialogs of our INVITE (forking), until one is confirmed; and the
    /// responses that made them (a resumed engine rebuilds them from these).
    pub early: Option<UacDialogs>,
    pub early_responses: Vec<Message>,
    /// UAC: the 2xx that confirmed our INVITE.
    pub answer: Option<Message>,
    pub dialog: Option<Dialog>,
    /// The far end's latest session description, and its latest provisional response.
    pub remote_sdp: Option<Arc<FarSdp>>,
    pub provisional: Option<Message>,
    /// Our origin toward this leg's far end.
    pub origin: AnchorOrigin,
    /// Our requests without a final response, by key.
    pub pending: BTreeMap<u64, Pending>,
    /// The request being answered by the current step (BYE, re-INVITE).
    pub inbound: Option<Inbound>,
    /// A re-INVITE from the far end waiting for the other leg's answer.
    pub reinvite: Option<Inbound>,
    /// The CSeq of the INVITE whose 2xx we acknowledge next, and the last ACK sent.
    pub ack_seq: u32,
    pub last_ack: Option<Message>,
    /// The final failure the leg ended with (status, reason); for a re-INVITE of ours, the
    /// far end's refusal.
    pub failure: Option<(u16, String)>,
    /// Our re-INVITE met a 491 and will be sent again (the partner keeps waiting).
    pub glare: bool,
    /// Hung up while our re-INVITE was out: the BYE goes once it is answered (and, for a
    /// 2xx, acknowledged), so the far end never takes a BYE while waiting for its ACK.
    pub hangup_after_update: bool,
    /// The status the far end's pending re-INVITE is refused with, when we refuse it
    /// ourselves (not passing on the partner's refusal).
    pub refusal: Option<u16>,
    /// UAC: the `Replaces` our INVITE carries (an attended transfer); only until it is sent.
    pub replaces: Option<String>,
    /// UAC: the last reliable provisional response acknowledged: its early dialog's tag and
    /// RSeq (a retransmission is not acknowledged again).
    pub last_rseq: Option<(String, u32)>,
    /// The session timer (RFC 4028): the interval in seconds (0: none), and whether we are
    /// the refresher.
    pub session_expires: u32,
    pub we_refresh: bool,
}

impl Leg {
    pub fn new(id: LegId, role: LegRole, tag: String, route: Route, slot: u32, origin: AnchorOrigin) -> Leg {
        Leg {
            id,
            role,
            machine: LegMachine::new(),
            tag,
            route,
            slot,
            invite: None,
            invite_tx: None,
            target: String::new(),
            invite_key: None,
            early: None,
            early_responses: Vec::new(),
            answer: None,
            dialog: None,
            remote_sdp: None,
            provisional: None,
            origin,
            pending: BTreeMap::new(),
            inbound: None,
            reinvite: None,
            ack_seq: 0,
            last_ack: None,
            failure: None,
            glare: false,
            hangup_after_update: false,
            refusal: None,
            replaces: None,
            last_rseq: None,
            session_expires: 0,
            we_refresh: false,
        }
    }

    pub fn state(&self) -> LegState {
        self.machine.state()
    }

    pub fn is_over(&self) -> bool {
        self.state().is_terminal()
    }

    /// Whether the far end talks to us now (its dialog is confirmed and not going away).
    pub fn is_up(&self) -> bool {
        matches!(self.state(), LegState::Answered | LegState::Confirmed | LegState::Updating | LegState::Updated)
    }
}
