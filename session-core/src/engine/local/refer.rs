//! A local call's transfers: a REFER to us decided by the user (202 and NOTIFYs of the call
//! to the target), and our own REFER followed through the far end's NOTIFYs.

use sip::message::{HeaderName, Message, Method};

use crate::engine::io::{CallEvent, LegId, Output, ServerTx};
use crate::engine::leg::{Inbound, Pending};
use crate::engine::{CALLER, Engine};
use crate::leg::{LegInput, LegState};

impl Engine {
    /// A REFER to us: the application decides.
    pub(in crate::engine) fn local_refer(
        &mut self,
        leg: LegId,
        tx: ServerTx,
        request: Message,
        target: String,
        replaces: Option<String>,
    ) {
        if self.leg(leg).state() != LegState::Confirmed {
            return self.respond(leg, tx, &request, 481, "Call/Transaction Does Not Exist", None);
        }
        if self.local().refer.is_some() {
            return self.respond(leg, tx, &request, 491, "Request Pending", None);
        }
        let domain = request.from().ok().and_then(|f| f.uri.as_sip().map(|s| s.host_port.host.to_string())).unwrap_or_default();
        let local = self.local();
        local.refer = Some(Inbound { tx, request });
        local.transfer_started = false;
        self.out.push_back(Output::Event(CallEvent::TransferRequested { leg, target, replaces, referrer_domain: domain }));
    }

    /// Answers the REFER waiting for a decision; with `notify`, the first NOTIFY.
    pub(super) fn answer_refer(&mut self, status: u16, reason: &str, notify: Option<(u16, &str, bool)>) {
        let Some(Inbound { tx, request }) = self.local().refer.clone() else { return };
        if self.local().transfer_started {
            return;
        }
        self.respond(CALLER, tx, &request, status, reason, None);
        match notify {
            Some((status, reason, last)) => {
                self.local().transfer_started = true;
                self.notify_refer(status, reason, last);
            }
            None => self.local().refer = None,
        }
    }

    /// A NOTIFY of the transfer we carry out (`last`: the subscription ends).
    pub(super) fn notify_refer(&mut self, status: u16, reason: &str, last: bool) {
        if self.local().refer.is_none() || !self.leg(CALLER).is_up() {
            return;
        }
        if last {
            self.local().refer = None;
        }
        let state = if last { "terminated;reason=noresource" } else { "active;expires=60" };
        let headers = [(HeaderName::Event, "refer".to_owned()), (HeaderName::SubscriptionState, state.to_owned())];
        let body = ("message/sipfrag;version=2.0", format!("SIP/2.0 {status} {reason}\r\n"));
        self.send_in_dialog(CALLER, Method::Notify, Pending::Notify, Some(body), &headers);
    }

    /// As transferor: REFER the far end to `refer_to` (a name-addr).
    pub(super) fn send_refer(&mut self, refer_to: String) {
        if !self.leg(CALLER).is_up() || self.local().referring {
            let event = CallEvent::ReferProgress { leg: CALLER, status: 491, reason: "Request Pending".into(), last: true };
            self.out.push_back(Output::Event(event));
            return;
        }
        let identity = self.local().end.identity.clone();
        let referred_by = identity.rfind('<').map_or(identity.clone(), |i| identity[i..].to_owned());
        let headers = [(HeaderName::ReferTo, refer_to), (HeaderName::ReferredBy, referred_by)];
        self.local().referring = true;
        self.send_in_dialog(CALLER, Method::Refer, Pending::Refer, None, &headers);
    }

    /// The answer to our REFER: a refusal ends the transfer.
    pub(in crate::engine) fn local_refer_answered(&mut self, leg: LegId, status: u16, reason: &str) {
        if status >= 300 {
            self.local().referring = false;
            let event = CallEvent::ReferProgress { leg, status, reason: reason.to_owned(), last: true };
            self.out.push_back(Output::Event(event));
        }
    }

    /// A NOTIFY about our REFER: progress, then the final status (a success ends our leg).
    pub(in crate::engine) fn local_refer_notified(&mut self, leg: LegId, request: &Message) {
        let line = std::str::from_utf8(request.body()).ok().and_then(|b| b.lines().next()).unwrap_or_default();
        let mut parts = line.splitn(3, ' ');
        let status = parts.nth(1).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        let reason = parts.next().unwrap_or_default().to_owned();
        let terminated = request.header(HeaderName::SubscriptionState).is_some_and(|s| s.trim().starts_with("terminated"));
        let last = terminated || status >= 200;
        if last {
            self.local().referring = false;
        }
        self.out.push_back(Output::Event(CallEvent::ReferProgress { leg, status, reason, last }));
        if (200..300).contains(&status) {
            self.work.push_back((leg, LegInput::Hangup));
        }
    }
}
