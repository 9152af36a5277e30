//! One call leg: a SIP dialog seen from our side, as the caller's server (UAS) or toward a
//! callee (UAC). Its behaviour is the table in [`table`]: `(state, input) → (actions, next
//! state)`. The table says *what* to do; the executor that owns the leg knows *how* (which
//! status, which SDP, which transaction): the call engine ([`crate::engine`]), which drives
//! any number of legs joined by its flow rules — or, in the SDK, one leg and our own media.

mod machine;
pub mod table;

use std::fmt;

pub use self::machine::{LegMachine, Step};

/// Where a leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LegState {
    Idle,
    /// UAC: INVITE sent, nothing heard.
    Calling,
    /// UAC: a provisional response arrived (ringing, early media).
    Alerting,
    /// UAS: INVITE received, only `100 Trying` sent.
    Incoming,
    /// UAS: a provisional response was sent.
    Early,
    /// UAS: 2xx sent, waiting for the ACK.
    Answered,
    /// The dialog is confirmed.
    Confirmed,
    /// We sent a re-INVITE and wait for its answer.
    Updating,
    /// We received a re-INVITE and owe an answer.
    Updated,
    /// UAC: CANCEL sent, waiting for the INVITE's final response.
    Cancelling,
    /// BYE sent, waiting for its response.
    Terminating,
    Terminated,
}

impl LegState {
    pub const ALL: [LegState; 12] = [
        LegState::Idle,
        LegState::Calling,
        LegState::Alerting,
        LegState::Incoming,
        LegState::Early,
        LegState::Answered,
        LegState::Confirmed,
        LegState::Updating,
        LegState::Updated,
        LegState::Cancelling,
        LegState::Terminating,
        LegState::Terminated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LegState::Idle => "Idle",
            LegState::Calling => "Calling",
            LegState::Alerting => "Alerting",
            LegState::Incoming => "Incoming",
            LegState::Early => "Early",
            LegState::Answered => "Answered",
            LegState::Confirmed => "Confirmed",
            LegState::Updating => "Updating",
            LegState::Updated => "Updated",
            LegState::Cancelling => "Cancelling",
            LegState::Terminating => "Terminating",
            LegState::Terminated => "Terminated",
        }
    }

    pub fn from_name(name: &str) -> Option<LegState> {
        LegState::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn is_terminal(self) -> bool {
        self == LegState::Terminated
    }
}

impl fmt::Display for LegState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What can happen to a leg: a command from its owner, or a message from the far end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LegInput {
    // Commands from the owner.
    /// UAC: place the call.
    Dial,
    /// UAS: send a provisional response.
    Ring,
    /// UAS: accept (2xx).
    Answer,
    /// UAS: refuse (final failure).
    Reject,
    /// UAC: give up before the answer.
    Cancel,
    /// End the call, whatever its state.
    Hangup,
    /// Send a re-INVITE (hold, resume, new media).
    Update,
    /// Accept a received re-INVITE.
    AcceptUpdate,
    /// Refuse a received re-INVITE.
    RejectUpdate,
    // Messages from the far end.
    /// UAS: the initial INVITE arrived.
    InviteReceived,
    /// UAC: 101–199 to our INVITE.
    Provisional,
    /// UAC: 2xx to our INVITE.
    Success,
    /// UAC: 300–699 to our INVITE.
    Failure,
    /// UAS: the ACK for our 2xx.
    Ack,
    /// UAS: the caller cancelled the INVITE.
    CancelReceived,
    ByeReceived,
    ReinviteReceived,
    /// 2xx to our re-INVITE.
    UpdateSuccess,
    /// Failure to our re-INVITE.
    UpdateFailure,
    /// Final response to our BYE.
    ByeResponse,
    /// A transaction of the leg timed out or could not be delivered (or our 2xx was
    /// never acknowledged).
    Timeout,
}

impl LegInput {
    pub const ALL: [LegInput; 21] = [
        LegInput::Dial,
        LegInput::Ring,
        LegInput::Answer,
        LegInput::Reject,
        LegInput::Cancel,
        LegInput::Hangup,
        LegInput::Update,
        LegInput::AcceptUpdate,
        LegInput::RejectUpdate,
        LegInput::InviteReceived,
        LegInput::Provisional,
        LegInput::Success,
        LegInput::Failure,
        LegInput::Ack,
        LegInput::CancelReceived,
        LegInput::ByeReceived,
        LegInput::ReinviteReceived,
        LegInput::UpdateSuccess,
        LegInput::UpdateFailure,
        LegInput::ByeResponse,
        LegInput::Timeout,
    ];
}

/// What the executor must do for a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegAction {
    SendInvite,
    SendProvisional,
    /// 2xx to the INVITE.
    SendAnswer,
    /// The failure status the owner chose.
    SendFailure,
    /// `487 Request Terminated` to a cancelled INVITE.
    SendRequestTerminated,
    SendAck,
    SendCancel,
    SendBye,
    /// 200 to the BYE received.
    ConfirmBye,
    SendReinvite,
    /// 2xx to the received re-INVITE.
    AnswerReinvite,
    /// Failure to the received re-INVITE (the owner's status).
    RejectReinvite,
    /// `491 Request Pending` to a re-INVITE that crossed ours.
    RejectReinvitePending,
    /// `481` to a re-INVITE that arrives while the leg is going away.
    RejectReinviteGone,
    /// `487` to the received re-INVITE we owed an answer when the leg ends.
    TerminateReinvite,
    /// Tell the owner.
    Notify(LegEvent),
}

/// What a leg tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegEvent {
    /// UAS: a call arrived.
    Incoming,
    /// UAC: the far end rings (or sends early media).
    Ringing,
    /// UAC: the far end answered.
    Answered,
    /// UAC: the call failed (final failure or timeout before an answer).
    Failed,
    /// UAS: the caller cancelled.
    Cancelled,
    /// UAS: the ACK arrived; the call is up.
    Confirmed,
    /// The far end asks for new media (re-INVITE).
    UpdateRequested,
    /// Our re-INVITE was accepted.
    UpdateDone,
    /// Our re-INVITE was refused.
    UpdateFailed,
    /// The leg is going away by itself (a timeout): the other side should hang up now.
    Ending,
    /// The leg ended (after a hangup, a BYE, a rejection).
    Ended,
}
