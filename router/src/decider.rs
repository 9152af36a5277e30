//! Deciding calls outside the router: the session core's [`SignalingInterceptor`] on the
//! bus. A route whose policy is `RequireManual` asks the `deciders` queue group on
//! `calls.decide`; [`serve`] makes any interceptor such a decider, in any process that
//! reaches the bus (one of a cluster, or inside `callmesh all`). The wire form of a
//! [`Decision`] is the `CallDecision` contract; this module translates both ways.

use std::sync::Arc;
use std::time::Duration;

use cluster::bus::{Bus, BusError, typed};
use cluster::contracts::{self, CallDecision, IncomingCall, TimeoutAction as WireTimeout, call_decision};
use cluster::subjects::{self, groups};
use session_core::interceptor::{CallInfo, Decision, SignalingInterceptor};
use session_core::policy::TimeoutAction;
use sip::message::Message;
use tracing::Instrument;

/// What the caller's INVITE says, for policies, interceptors and routes.
pub fn call_info(call: &IncomingCall, invite: &Message) -> CallInfo {
    let target = invite.request_uri().ok();
    let from = invite.from().ok();
    let from_sip = from.as_ref().and_then(|f| f.uri.as_sip());
    CallInfo {
        call_id: call.call_id.clone(),
        target: call.request_uri.clone(),
        target_user: target.as_ref().and_then(|u| u.user()).unwrap_or_default().to_owned(),
        from_user: from_sip.and_then(|u| u.user.clone()).unwrap_or_default(),
        from_domain: from_sip.map(|u| u.host_port.host.to_string()).unwrap_or_default(),
    }
}

pub(crate) fn timeout_to_wire(action: TimeoutAction) -> WireTimeout {
    match action {
        TimeoutAction::Reject => WireTimeout::Reject,
        TimeoutAction::Accept => WireTimeout::Accept,
        TimeoutAction::SendToVoicemail => WireTimeout::Voicemail,
    }
}

fn timeout_from_wire(action: i32) -> TimeoutAction {
    match WireTimeout::try_from(action) {
        Ok(WireTimeout::Accept) => TimeoutAction::Accept,
        Ok(WireTimeout::Voicemail) => TimeoutAction::SendToVoicemail,
        _ => TimeoutAction::Reject,
    }
}

/// The wire form of a decider's decision. The router cannot run a decider's `Custom` action
/// (it lives in the decider's process) nor wait for a second decider: both are refused
/// with the status the router would give them.
pub fn to_wire(decision: Decision) -> CallDecision {
    use call_decision::Decision as D;
    let reject = |status: u32, reason: &str| D::Reject(contracts::Reject { status, reason: reason.into() });
    let decision = match decision {
        Decision::Accept => D::Accept(contracts::Accept {}),
        Decision::Reject { status, reason } => reject(u32::from(status), &reason),
        Decision::Route { targets } => D::Route(contracts::Route { targets }),
        Decision::Defer { timeout: Some(t), on_timeout } => D::Defer(contracts::Defer {
            timeout_secs: t.as_secs().clamp(1, u64::from(u32::MAX)) as u32,
            on_timeout: timeout_to_wire(on_timeout) as i32,
        }),
        Decision::Defer { timeout: None, .. } => reject(480, "No Call Handler"),
        Decision::Custom { action } => {
            tracing::warn!(%action, "a decider's custom action cannot run in the router");
            reject(500, "No Such Call Action")
        }
    };
    CallDecision { meta: None, decision: Some(decision) }
}

/// A decision read from the wire; none (no decider answered in time) is 480.
pub fn from_wire(decision: Option<CallDecision>) -> Decision {
    use call_decision::Decision as D;
    match decision.and_then(|d| d.decision) {
        Some(D::Accept(_)) => Decision::Accept,
        Some(D::Reject(r)) => Decision::Reject { status: u16::try_from(r.status).unwrap_or(500), reason: r.reason },
        Some(D::Route(r)) => Decision::Route { targets: r.targets },
        Some(D::Defer(d)) => Decision::Defer {
            timeout: Some(Duration::from_secs(u64::from(d.timeout_secs.max(1)))),
            on_timeout: timeout_from_wire(d.on_timeout),
        },
        None => Decision::reject(480, "No Call Handler"),
    }
}

/// A running decider; dropping it stops it.
pub struct Decider(tokio::task::JoinHandle<()>);

impl Drop for Decider {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `interceptor` as one of the cluster's deciders (queue group `deciders`: each
/// call is asked of one of them). Returns once the subscription is live.
pub async fn serve(bus: Arc<dyn Bus>, interceptor: Arc<dyn SignalingInterceptor>) -> Result<Decider, BusError> {
    let mut asked = typed::queue_subscribe::<IncomingCall>(bus.as_ref(), &subjects::call_decisions(), groups::DECIDERS).await?;
    bus.flush().await?;
    Ok(Decider(tokio::spawn(async move {
        while let Some(request) = asked.next().await {
            let (bus, interceptor) = (bus.clone(), interceptor.clone());
            let span = tracing::info_span!("router.decide", call_id = %request.message.call_id);
            request.follow(&span);
            tokio::spawn(
                async move {
                    let decision = match Message::parse_datagram(request.message.invite.clone()) {
                        Ok(invite) => interceptor.on_incoming_call(&call_info(&request.message, &invite)).await,
                        Err(_) => Decision::reject(400, "Bad Request"),
                    };
                    if let Err(e) = typed::reply(bus.as_ref(), &request.raw, &to_wire(decision)).await {
                        tracing::warn!(error = %e, "decision not sent");
                    }
                }
                .instrument(span),
            );
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_cross_the_wire_unchanged_or_as_the_routers_refusal() {
        let same = [
            Decision::Accept,
            Decision::reject(403, "Forbidden"),
            Decision::Route { targets: vec!["sip:a@b".into(), "sip:c@d".into()] },
            Decision::Defer { timeout: Some(Duration::from_secs(7)), on_timeout: TimeoutAction::SendToVoicemail },
            Decision::Defer { timeout: Some(Duration::from_secs(2)), on_timeout: TimeoutAction::Accept },
        ];
        for d in same {
            assert_eq!(from_wire(Some(to_wire(d.clone()))), d);
        }
        let nobody = Decision::Defer { timeout: None, on_timeout: TimeoutAction::Reject };
        assert_eq!(from_wire(Some(to_wire(nobody))), Decision::reject(480, "No Call Handler"));
        assert_eq!(from_wire(Some(to_wire(Decision::custom("ivr")))), Decision::reject(500, "No Such Call Action"));
        assert_eq!(from_wire(None), Decision::reject(480, "No Call Handler"));
        let huge = contracts::Reject { status: 70_000, reason: "x".into() };
        let d = CallDecision { meta: None, decision: Some(call_decision::Decision::Reject(huge)) };
        assert_eq!(from_wire(Some(d)), Decision::reject(500, "x"));
    }
}
