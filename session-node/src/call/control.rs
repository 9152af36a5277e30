//! What an operator asks of a call through the API (`CallControl`, on the session's events
//! subject): hang it up; put the caller through to someone else (a blind transfer: whoever
//! it talks to is hung up, the target called; relayed calls only — a queue or conference
//! call is refused); start or stop recording it (a new segment each start).

use std::time::Instant;

use cluster::contracts::{CallControl, EdgeEvent, call_control, edge_event};
use session_core::engine::{CALLER, Command, Target};

use super::Call;

/// The operator's request an event carries, if it is one.
pub(super) fn control(event: &EdgeEvent) -> Option<&CallControl> {
    match &event.event {
        Some(edge_event::Event::Control(c)) => Some(c),
        _ => None,
    }
}

impl Call {
    pub(super) async fn on_control(&mut self, control: &CallControl) {
        match &control.action {
            Some(call_control::Action::Hangup(_)) => {
                tracing::info!(session = %self.id, "hung up by an operator");
                self.engine.handle_command(Command::Hangup, Instant::now());
            }
            Some(call_control::Action::Transfer(t)) if self.seat.is_none() => {
                tracing::info!(session = %self.id, target = %t.target, "transferred by an operator");
                let target = Target { uri: t.target.clone(), route: None };
                self.engine.handle_command(Command::Transfer { leg: CALLER, target }, Instant::now());
            }
            Some(call_control::Action::Transfer(_)) => {
                tracing::warn!(session = %self.id, "a queue or conference call is not transferred by an operator");
            }
            Some(call_control::Action::Record(r)) => self.record_by_operator(r.on).await,
            None => {}
        }
    }

    async fn record_by_operator(&mut self, on: bool) {
        let node = match (&self.media_node, &self.seat) {
            (Some(node), _) => node.clone(),
            (None, Some(seated)) => seated.seat.node.clone(),
            (None, None) => return tracing::warn!(session = %self.id, "no media to record yet"),
        };
        if on == self.record {
            return;
        }
        if on {
            self.segment += 1;
        }
        match self.ctx.media.record(&node, &self.id, on, "stereo", self.segment).await {
            Ok(_) => self.record = on,
            Err(e) => tracing::warn!(session = %self.id, on, error = %e, "recording not switched"),
        }
    }
}
