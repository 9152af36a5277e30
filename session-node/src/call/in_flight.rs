//! Requests a call sent through an edge that have no final answer yet. When that edge dies
//! they are sent again through any other: a new transaction, which the far end answers (a
//! BYE it already took gets its 200 or a 481 again), rather than a request lost with the
//! edge and a call left up at one end.

use std::collections::HashMap;

use cluster::contracts::{EdgeEvent, edge_command, edge_event};

/// Requests sent, by correlation key, with the edge that carries them.
#[derive(Default)]
pub(super) struct InFlight {
    requests: HashMap<u64, (String, edge_command::Command)>,
}

/// A response's status, from its first line (`SIP/2.0 200 OK`).
fn status(response: &[u8]) -> u16 {
    response.get(8..11).and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| d.parse().ok()).unwrap_or(0)
}

impl InFlight {
    /// `command` went to `edge`: kept when it starts a request.
    pub fn sent(&mut self, edge: &str, command: &edge_command::Command) {
        if let edge_command::Command::SendRequest(s) = command {
            self.requests.insert(s.correlation, (edge.to_owned(), command.clone()));
        }
    }

    /// What an edge reported: a final response or a failure ends its request.
    pub fn heard(&mut self, event: &EdgeEvent) {
        match &event.event {
            Some(edge_event::Event::Response(r)) if status(&r.response) >= 200 => {
                self.requests.remove(&r.correlation);
            }
            Some(edge_event::Event::Failed(f)) => {
                self.requests.remove(&f.correlation);
            }
            _ => {}
        }
    }

    /// The requests in flight through `edge`, which died (now through any edge).
    pub fn through(&mut self, edge: &str) -> Vec<edge_command::Command> {
        let mut again = Vec::new();
        for (carrier, command) in self.requests.values_mut() {
            if carrier == edge {
                carrier.clear();
                again.push(command.clone());
            }
        }
        again
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
            f.sent(if key == 4 { "edge-1" } else { "edge-0" }, &request(key));
        }
        let response = |key, text: &str| ResponseReceived { correlation: key, response: text.as_bytes().to_vec().into() };
        f.heard(&event(edge_event::Event::Response(response(1, "SIP/2.0 180 Ringing\r\n"))));
        f.heard(&event(edge_event::Event::Response(response(2, "SIP/2.0 200 OK\r\n"))));
        f.heard(&event(edge_event::Event::Failed(RequestFailed { correlation: 3, ..Default::default() })));
        assert_eq!(f.through("edge-0"), vec![request(1)], "only the one still waiting");
        assert!(f.through("edge-0").is_empty(), "sent again once");
        assert_eq!(f.through("edge-1"), vec![request(4)]);
    }
}
