//! Requests a call sent through an edge that have no final answer yet. When that edge dies
//! they are sent again through any other: a new transaction, which the far end answers (a
//! BYE it already took gets its 200 or a 481 again), rather than a request lost with the
//! edge and a call left up at one end. And a request nothing at all was heard of within
//! [`NO_NEWS`] — lost on its way to the edge (a NATS server dying under it), or recorded
//! by an owner that died before it left — is sent again to the same edge, which ignores a
//! request it already has (the far end's answers are on their way).

use std::collections::HashMap;
use std::time::Duration;

use cluster::contracts::{EdgeEvent, edge_command, edge_event};
use cluster::subjects::{self, NodeId};
use tokio::time::Instant;

/// How long a request waits for any news (a provisional response will do) before it is
/// sent again; and how many times it is.
pub const NO_NEWS: Duration = Duration::from_secs(2);
const MOST_AGAIN: u8 = 2;

/// A request sent: the edge that carries it ("" for any), and what was heard of it.
struct Flight {
    carrier: String,
    command: edge_command::Command,
    look_at: Instant,
    heard: bool,
    again: u8,
}

/// Requests sent, by correlation key.
#[derive(Default)]
pub(super) struct InFlight {
    requests: HashMap<u64, Flight>,
}

/// A response's status, from its first line (`SIP/2.0 200 OK`).
fn status(response: &[u8]) -> u16 {
    response.get(8..11).and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| d.parse().ok()).unwrap_or(0)
}

impl InFlight {
    /// `command` went to `edge` at `now`: kept when it starts a request.
    pub fn sent(&mut self, edge: &str, command: &edge_command::Command, now: Instant) {
        if let edge_command::Command::SendRequest(s) = command {
            let flight =
                Flight { carrier: edge.to_owned(), command: command.clone(), look_at: now + NO_NEWS, heard: false, again: 0 };
            self.requests.insert(s.correlation, flight);
        }
    }

    /// `command`, which an owner before us may or may not have sent to `edge`: due to be
    /// sent (again) at once.
    pub fn unconfirmed(&mut self, edge: &str, command: &edge_command::Command, now: Instant) {
        self.sent(edge, command, now);
        if let edge_command::Command::SendRequest(s) = command
            && let Some(f) = self.requests.get_mut(&s.correlation)
        {
            f.look_at = now;
        }
    }

    /// What an edge reported: any response is news of its request; a final one or a
    /// failure ends it.
    pub fn heard(&mut self, event: &EdgeEvent) {
        match &event.event {
            Some(edge_event::Event::Response(r)) if status(&r.response) >= 200 => {
                self.requests.remove(&r.correlation);
            }
            Some(edge_event::Event::Response(r)) => {
                if let Some(f) = self.requests.get_mut(&r.correlation) {
                    f.heard = true;
                }
            }
            Some(edge_event::Event::Failed(f)) => {
                self.requests.remove(&f.correlation);
            }
            _ => {}
        }
    }

    /// The requests in flight through `edge`, which died (now through any edge, news of
    /// them awaited afresh from `now`).
    pub fn through(&mut self, edge: &str, now: Instant) -> Vec<edge_command::Command> {
        let mut again = Vec::new();
        for f in self.requests.values_mut() {
            if f.carrier == edge {
                f.carrier.clear();
                f.look_at = now + NO_NEWS;
                again.push(f.command.clone());
            }
        }
        again
    }

    /// When a request without news is next due to be sent again.
    pub fn next_look(&self) -> Option<Instant> {
        self.requests.values().filter(|f| !f.heard && f.again < MOST_AGAIN).map(|f| f.look_at).min()
    }

    /// The requests nothing was heard of since [`NO_NEWS`], with their edges, to send again.
    pub fn without_news(&mut self, now: Instant) -> Vec<(String, edge_command::Command)> {
        let mut again = Vec::new();
        for f in self.requests.values_mut().filter(|f| !f.heard && f.again < MOST_AGAIN && f.look_at <= now) {
            f.again += 1;
            f.look_at = now + NO_NEWS;
            again.push((f.carrier.clone(), f.command.clone()));
        }
        again
    }
}

impl super::Call {
    /// Sends again the requests nothing was heard of, each to its edge (any edge when it
    /// died).
    pub(super) async fn send_without_news(&mut self) {
        for (edge, command) in self.in_flight.without_news(Instant::now()) {
            let subject = match edge.as_str() {
                "" => subjects::any_edge_commands(),
                edge if self.ctx.edges_gone.contains(edge) => subjects::any_edge_commands(),
                edge => match NodeId::new(edge) {
                    Ok(edge) => subjects::edge_commands(&edge),
                    Err(_) => subjects::any_edge_commands(),
                },
            };
            tracing::info!(session = %self.id, %edge, "nothing heard of a request: sent again");
            self.publish(&subject, command).await;
        }
    }

    /// A call resumed from its record: its INVITEs nothing was heard of go again at once.
    pub(super) fn resend_unheard(&mut self) {
        let now = Instant::now();
        for output in self.engine.unheard_invites() {
            if let session_core::engine::Output::Send { key, route, .. } = &output {
                self.edges.insert(*key, route.edge.clone());
            }
            if let Some((edge, command)) = super::wire::edge_command(output, |_| None) {
                self.in_flight.unconfirmed(&edge, &command, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cluster::contracts::{RequestFailed, ResponseReceived, SendRequest};

    use super::*;

    fn request(correlation: u64) -> edge_command::Command {
        edge_command::Command::SendRequest(SendRequest { correlation, ..Default::default() })
    }

    fn event(event: edge_event::Event) -> EdgeEvent {
        EdgeEvent { event: Some(event), ..Default::default() }
    }

    #[test]
    fn requests_without_a_final_answer_are_sent_again_once_when_their_edge_dies() {
        let mut f = InFlight::default();
        for key in 1..=4 {
            f.sent(if key == 4 { "edge-1" } else { "edge-0" }, &request(key), Instant::now());
        }
        let response = |key, text: &str| ResponseReceived { correlation: key, response: text.as_bytes().to_vec().into() };
        f.heard(&event(edge_event::Event::Response(response(1, "SIP/2.0 180 Ringing\r\n"))));
        f.heard(&event(edge_event::Event::Response(response(2, "SIP/2.0 200 OK\r\n"))));
        f.heard(&event(edge_event::Event::Failed(RequestFailed { correlation: 3, ..Default::default() })));
        // The edge's death is learnt of later than the requests' own wait for news.
        let later = Instant::now() + 3 * NO_NEWS;
        assert_eq!(f.through("edge-0", later), vec![request(1)], "only the one still waiting");
        assert!(f.through("edge-0", later).is_empty(), "sent again once");
        assert_eq!(f.through("edge-1", later), vec![request(4)]);
        assert!(f.without_news(later).is_empty(), "news of them awaited afresh, not sent a third time at once");
    }

    #[test]
    fn requests_nothing_was_heard_of_are_sent_again_to_their_edge() {
        let (mut f, now) = (InFlight::default(), Instant::now());
        f.sent("edge-0", &request(1), now);
        f.sent("edge-0", &request(2), now);
        let ringing = ResponseReceived { correlation: 2, response: "SIP/2.0 180 Ringing\r\n".as_bytes().to_vec().into() };
        f.heard(&event(edge_event::Event::Response(ringing)));
        assert_eq!(f.next_look(), Some(now + NO_NEWS));
        assert!(f.without_news(now + NO_NEWS - Duration::from_millis(1)).is_empty());
        assert_eq!(f.without_news(now + NO_NEWS), vec![("edge-0".to_owned(), request(1))], "not the one that rang");
        assert_eq!(f.without_news(now + 2 * NO_NEWS).len(), 1);
        assert!(f.without_news(now + 3 * NO_NEWS).is_empty(), "at most {MOST_AGAIN} times");
        assert_eq!(f.next_look(), None);
    }
}
