//! What arrives over SIP, read for the legs: in-dialog requests found by our tag (a BYE or
//! re-INVITE the table has no row for is answered at once — 481 or 500 — never left to a
//! timer), ACKs, CANCELs, responses by the key of the request they answer, failures.
//! Requests that are not the table's business (INFO, UPDATE) are relayed to the partner.

use std::time::Instant;

use sip::dialog::Dialog;
use sip::dialog::forking::DialogUpdate;
use sip::message::{HeaderName, Message, Method};

use super::io::{CallEvent, Failure, LegId, Output, ServerTx, SipInput};
use super::leg::{Inbound, Pending};
use super::{Engine, Timer, far_sdp, glare_delay};
use crate::leg::table::lookup;
use crate::leg::{LegInput, LegState};

impl Engine {
    pub(super) fn on_sip(&mut self, input: SipInput, now: Instant) {
        match input {
            SipInput::Request { tx, request, .. } => self.on_request(tx, request, now),
            SipInput::Ack { request } => {
                let Some(leg) = self.leg_of(&request) else { return };
                if let Some(d) = self.leg_mut(leg).dialog.as_mut() {
                    let _ = d.on_request(&request);
                }
                self.work.push_back((leg, LegInput::Ack));
            }
            SipInput::Cancelled { tx } => {
                if let Some(leg) = self.legs.iter().find(|l| l.invite_tx.as_ref() == Some(&tx)).map(|l| l.id) {
                    self.work.push_back((leg, LegInput::CancelReceived));
                }
            }
            SipInput::Response { key, response } => self.on_response(key, response, now),
            SipInput::Failed { key, reason } => self.on_failed_request(key, reason),
            SipInput::AckTimeout { tx } => {
                if let Some(leg) = self.legs.iter().find(|l| l.invite_tx.as_ref() == Some(&tx)).map(|l| l.id) {
                    self.work.push_back((leg, LegInput::Timeout));
                }
            }
        }
    }

    /// The leg whose tag the message's To (request) names.
    fn leg_of(&self, request: &Message) -> Option<LegId> {
        let tag = request.to_tag()?;
        self.legs.iter().find(|l| l.tag == tag).map(|l| l.id)
    }

    fn on_request(&mut self, tx: ServerTx, request: Message, now: Instant) {
        let Some(method) = request.method().cloned() else { return };
        let Some(leg) = self.leg_of(&request) else {
            let response = sip::message::Builder::response_to(&request, 481, "Call/Transaction Does Not Exist", None).build();
            if let Ok(response) = response {
                self.out.push_back(Output::Respond { tx, response });
            }
            return;
        };
        // The BYE that ended the leg, again on another transaction (its first one died with
        // an edge before the 200 went out): answered as the first was.
        let seq_before = self.leg(leg).dialog.as_ref().and_then(|d| d.remote_seq);
        if method == Method::Bye
            && self.leg(leg).state() == LegState::Terminated
            && seq_before.is_some_and(|s| request.cseq().is_some_and(|(seq, _)| seq == s))
        {
            return self.respond(leg, tx, &request, 200, "OK", None);
        }
        if let Some(dialog) = self.leg_mut(leg).dialog.as_mut()
            && let Err(e) = dialog.on_request(&request)
        {
            let status = e.status();
            self.respond(leg, tx, &request, status, "", None);
            return;
        }
        if matches!(method, Method::Invite | Method::Update) && self.leg(leg).is_up() {
            self.session_refreshed(leg);
        }
        match method {
            Method::Bye => self.table_request(leg, tx, request, LegInput::ByeReceived, 481),
            Method::Invite => self.on_reinvite(leg, tx, request),
            Method::Refer => self.on_refer(leg, tx, request, now),
            Method::Info | Method::Update => self.relay_request(leg, tx, request),
            Method::Notify if self.is_local() && is_refer_event(&request) => {
                self.respond(leg, tx, &request, 200, "OK", None);
                self.local_refer_notified(leg, &request);
            }
            Method::Options | Method::Notify | Method::Prack => self.respond(leg, tx, &request, 200, "OK", None),
            _ => self.respond(leg, tx, &request, 405, "Method Not Allowed", None),
        }
    }

    /// A request the leg table answers: queued as `input`, or refused with `otherwise` when
    /// the table has no row for it in the leg's state.
    fn table_request(&mut self, leg: LegId, tx: ServerTx, request: Message, input: LegInput, otherwise: u16) {
        if lookup(self.leg(leg).state(), input).is_none() {
            let reason = if otherwise == 481 { "Call/Transaction Does Not Exist" } else { "Server Internal Error" };
            self.respond(leg, tx, &request, otherwise, reason, None);
            return;
        }
        self.leg_mut(leg).inbound = Some(Inbound { tx, request });
        self.work.push_back((leg, input));
    }

    /// A re-INVITE: a confirmed leg takes its offer to the partner; in other states the
    /// table answers (491 while ours is pending, 481 while going away).
    fn on_reinvite(&mut self, leg: LegId, tx: ServerTx, request: Message) {
        if self.leg(leg).state() == LegState::Confirmed {
            let offer = far_sdp(&request);
            let l = self.leg_mut(leg);
            l.reinvite = Some(Inbound { tx: tx.clone(), request: request.clone() });
            if offer.is_some() {
                l.remote_sdp = offer;
            }
            self.connect_slot(leg);
        }
        self.table_request(leg, tx, request, LegInput::ReinviteReceived, 500);
    }

    /// INFO and UPDATE go on to the partner's dialog; its answer comes back on `tx`. DTMF in
    /// an INFO is also an event.
    fn relay_request(&mut self, leg: LegId, tx: ServerTx, request: Message) {
        if let Some(digit) = dtmf_relay_digit(&request) {
            self.out.push_back(Output::Event(CallEvent::Dtmf { leg, digit }));
            if self.dtmf_to_rtp(leg, digit, &request) {
                return self.respond(leg, tx, &request, 200, "OK", None);
            }
        }
        if self.is_local() {
            return match request.method() {
                Some(Method::Update) => self.local_update(leg, tx, request),
                _ => self.respond(leg, tx, &request, 200, "OK", None),
            };
        }
        let Some(partner) = self.partner(leg).filter(|p| self.leg(*p).is_up()) else {
            let status = if request.method() == Some(&Method::Info) { 200 } else { 491 };
            self.respond(leg, tx, &request, status, "", None);
            return;
        };
        let body = match far_sdp(&request) {
            Some(offer) => {
                self.leg_mut(leg).remote_sdp = Some(offer.clone());
                self.anchored_for(partner, &offer).map(|s| ("application/sdp".to_owned(), s))
            }
            None if !request.body().is_empty() => {
                let content_type = request.content_type().unwrap_or("application/octet-stream").to_owned();
                Some((content_type, String::from_utf8_lossy(request.body()).into_owned()))
            }
            None => None,
        };
        let method = request.method().cloned().unwrap_or(Method::Info);
        let body = body.as_ref().map(|(t, b)| (t.as_str(), b.clone()));
        self.send_in_dialog(partner, method, Pending::Relayed { tx, request: Box::new(request) }, body, &[]);
    }

    fn on_response(&mut self, key: u64, response: Message, now: Instant) {
        let Some(leg) = self.legs.iter().find(|l| l.pending.contains_key(&key)).map(|l| l.id) else {
            // A 2xx after the INVITE's: repeated (our ACK was lost) or from another fork.
            if let Some(leg) = self.legs.iter().find(|l| l.invite_key == Some(key)).map(|l| l.id)
                && response.status().is_some_and(|s| (200..300).contains(&s))
            {
                self.on_invite_response(leg, response);
            }
            return;
        };
        let status = response.status().unwrap_or(0);
        let Some(pending) = self.leg(leg).pending.get(&key).cloned() else { return };
        if status >= 200 {
            self.leg_mut(leg).pending.remove(&key);
        }
        match pending {
            Pending::Invite => self.on_invite_response(leg, response),
            Pending::Reinvite(seq) if status >= 200 => self.on_reinvite_response(leg, seq, response, now),
            Pending::Bye if status >= 200 => self.work.push_back((leg, LegInput::ByeResponse)),
            Pending::Refer if status >= 200 => self.local_refer_answered(leg, status, response.reason()),
            Pending::Refresh if status >= 200 => self.refresh_answered(leg, status),
            Pending::Relayed { tx, request } if status > 100 => {
                let from = self.partner(leg).unwrap_or(leg);
                let sdp = far_sdp(&response).and_then(|answer| {
                    self.leg_mut(leg).remote_sdp = Some(answer.clone());
                    self.anchored_for(from, &answer)
                });
                self.respond(from, tx, &request, status, response.reason(), sdp);
            }
            _ => {}
        }
    }

    fn on_invite_response(&mut self, leg: LegId, response: Message) {
        let status = response.status().unwrap_or(0);
        let update = self.leg_mut(leg).early.as_mut().map(|d| d.on_response(&response));
        match status {
            100 => {}
            101..=199 => {
                if response.to_tag().is_some() {
                    self.leg_mut(leg).early_responses.push(response.clone());
                }
                self.prack(leg, &response);
                if let Some(answer) = far_sdp(&response) {
                    self.leg_mut(leg).remote_sdp = Some(answer);
                    self.connect_slot(leg);
                    if self.is_local() {
                        self.local_answered(&response);
                    }
                }
                self.leg_mut(leg).provisional = Some(response);
                self.work.push_back((leg, LegInput::Provisional));
            }
            200..=299 => match update {
                Some(Ok(DialogUpdate::Confirmed(tag)))
                    if matches!(self.leg(leg).state(), LegState::Calling | LegState::Alerting | LegState::Cancelling) =>
                {
                    let l = self.leg_mut(leg);
                    l.dialog = l.early.as_ref().and_then(|d| d.get(&tag)).cloned();
                    l.answer = Some(response.clone());
                    l.ack_seq = response.cseq().map_or(1, |(s, _)| s);
                    if let Some(answer) = far_sdp(&response) {
                        l.remote_sdp = Some(answer);
                    }
                    if self.is_local() {
                        self.local_answered(&response);
                    }
                    self.negotiate_as_uac(leg, &response);
                    self.work.push_back((leg, LegInput::Success));
                }
                // The 2xx again: our ACK was lost.
                Some(Ok(DialogUpdate::Confirmed(_))) => self.resend_ack(leg),
                // Another fork answered too (RFC 3261 §13.2.2.4): acknowledge, then end it.
                Some(Ok(DialogUpdate::ExtraConfirmed(_))) => self.end_extra_fork(leg, &response),
                _ => {}
            },
            401 | 407 if self.local_challenged(leg, &response) => {}
            // What made us cancel (an answer timeout) stays the reason, not the 487.
            _ if self.leg(leg).state() == LegState::Cancelling && self.leg(leg).failure.is_some() => {
                self.work.push_back((leg, LegInput::Failure));
            }
            _ => {
                self.leg_mut(leg).failure = Some((status, response.reason().to_owned()));
                self.work.push_back((leg, LegInput::Failure));
            }
        }
    }

    /// A reliable provisional response (RFC 3262) is acknowledged here with PRACK: we end
    /// 100rel at each leg, and the other side hears an ordinary provisional.
    fn prack(&mut self, leg: LegId, response: &Message) {
        if !response.tokens(HeaderName::Require).any(|t| t.eq_ignore_ascii_case("100rel")) {
            return;
        }
        let (Some(rseq), Some(tag), Some((cseq, _))) = (
            response.header(HeaderName::RSeq).and_then(|v| v.trim().parse::<u32>().ok()),
            response.to_tag().map(str::to_owned),
            response.cseq(),
        ) else {
            return;
        };
        let l = self.leg_mut(leg);
        if l.last_rseq.as_ref().is_some_and(|(t, r)| *t == tag && *r >= rseq) {
            return;
        }
        l.last_rseq = Some((tag.clone(), rseq));
        let Some(dialog) = l.early.as_mut().and_then(|d| d.get_mut(&tag)) else { return };
        let request = dialog
            .request(Method::Prack, None)
            .header(HeaderName::RAck, format_args!("{rseq} {cseq} INVITE"))
            .header(HeaderName::UserAgent, super::sip_out::USER_AGENT)
            .build();
        let Ok(request) = request else { return };
        let key = self.key();
        let route = self.leg(leg).route.clone();
        self.leg_mut(leg).pending.insert(key, Pending::Prack);
        self.out.push_back(Output::Send { key, request, route });
    }

    /// A 2xx from a second fork of an answered INVITE: ACK it and BYE it at once.
    fn end_extra_fork(&mut self, leg: LegId, response: &Message) {
        let Some(invite) = self.leg(leg).invite.clone() else { return };
        let Ok(mut dialog) = Dialog::uac(&invite, response) else { return };
        let route = self.leg(leg).route.clone();
        if let Ok(ack) = dialog.ack(1, None).build() {
            self.out.push_back(Output::Ack { request: ack, route: route.clone(), invite_key: None });
        }
        if let Ok(bye) = dialog.request(Method::Bye, None).build() {
            let key = self.key();
            self.out.push_back(Output::Send { key, request: bye, route });
        }
    }

    fn on_reinvite_response(&mut self, leg: LegId, seq: u32, response: Message, now: Instant) {
        let status = response.status().unwrap_or(0);
        if (200..300).contains(&status) {
            let l = self.leg_mut(leg);
            if let Some(d) = l.dialog.as_mut() {
                let _ = d.on_response(&response);
            }
            l.ack_seq = seq;
            if let Some(answer) = far_sdp(&response) {
                l.remote_sdp = Some(answer);
            }
            self.connect_slot(leg);
            if self.is_local() {
                self.local_answered(&response);
            }
            self.session_refreshed(leg);
            self.work.push_back((leg, LegInput::UpdateSuccess));
            return;
        }
        if status == 491 {
            // Glare: back off and try again (RFC 3261 §14.1); the partner keeps waiting.
            let owner = self.leg(leg).role == super::leg::LegRole::Uac;
            let call_id = response.call_id().unwrap_or_default().to_owned();
            self.leg_mut(leg).glare = true;
            self.timers.insert(Timer::Glare(leg), now + glare_delay(owner, &call_id));
        } else {
            self.leg_mut(leg).failure = Some((status, response.reason().to_owned()));
        }
        self.work.push_back((leg, LegInput::UpdateFailure));
    }

    fn on_failed_request(&mut self, key: u64, reason: Failure) {
        let Some(leg) = self.legs.iter().find(|l| l.pending.contains_key(&key)).map(|l| l.id) else { return };
        let Some(pending) = self.leg_mut(leg).pending.remove(&key) else { return };
        match pending {
            Pending::Invite => {
                let failure = match reason {
                    Failure::Transport => (503, "Service Unavailable"),
                    Failure::Timeout => (408, "Request Timeout"),
                };
                self.leg_mut(leg).failure = Some((failure.0, failure.1.into()));
                self.work.push_back((leg, LegInput::Timeout));
            }
            Pending::Reinvite(_) if self.local_retry_reinvite(leg) => {}
            Pending::Reinvite(_) | Pending::Bye => self.work.push_back((leg, LegInput::Timeout)),
            Pending::Refer => self.local_refer_answered(leg, 408, "Request Timeout"),
            Pending::Relayed { tx, request } => {
                let from = self.partner(leg).unwrap_or(leg);
                self.respond(from, tx, &request, 408, "Request Timeout", None);
            }
            Pending::Refresh => self.session_expired(leg),
            Pending::Notify | Pending::Prack | Pending::Info => {}
        }
    }
}

/// A NOTIFY of the `refer` event package (RFC 3515).
fn is_refer_event(request: &Message) -> bool {
    request.header(HeaderName::Event).is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer"))
}

/// `Signal=5` of an `application/dtmf-relay` INFO.
pub(crate) fn dtmf_relay_digit(request: &Message) -> Option<char> {
    if !request.content_type()?.eq_ignore_ascii_case("application/dtmf-relay") {
        return None;
    }
    let text = std::str::from_utf8(request.body()).ok()?;
    let line = text.lines().find(|l| l.trim_start().to_ascii_lowercase().starts_with("signal"))?;
    line.split('=').nth(1)?.trim().chars().next().filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))
}
