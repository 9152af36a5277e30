//! New calls no node has acted on yet. A call published to the routers can be lost between
//! the nodes — in the socket of a router or session node that dies, in a NATS server that
//! dies with the publish — and nothing tells the edge. So a call nobody acted on within
//! [`AGAIN`] is published again, at most [`MOST_AGAIN`] times, each time under a new session
//! id: should the first copy only have been slow, two session nodes run the call, and the
//! ids keep their relays, seats and records apart. The first session to give the edge a
//! command for the call wins it; the others are disowned (their commands dropped, and told,
//! so they release what they took). A call still unclaimed at its deadline is refused.
//!
//! Pure bookkeeping on a clock passed in; the edge does the publishing and answering.

use std::collections::HashMap;

use cluster::contracts::IncomingCall;
use cluster::subjects::SessionId;
use sip::message::Message;
use sip::transaction::TxId;
use tokio::time::{Duration, Instant};

/// A new call nobody acted on is published again after this long, and again after as long.
pub const AGAIN: Duration = Duration::from_millis(1500);
/// How many times at most a new call is published again.
pub const MOST_AGAIN: u32 = 2;
/// How many calls at most are published again at once (the edge looks twice a second): a
/// node's death loses the few calls in its socket, a NATS server's the few publishes in
/// it, while a cluster slow to act on every call (overloaded, or one node short) must not
/// be given each of them again: at 100 calls/s with a session node just dead, copies of
/// slow calls made it slower still (700 copies in a minute with no cap but 200/s).
const MOST_AT_ONCE: usize = 10;
/// How long a disowned session's commands are dropped (and it told again): as long as the
/// loser can take to notice (a call's setup, Timer B).
const DISOWNED_FOR: Duration = Duration::from_secs(32);

/// A new call waiting for a session to act on it.
struct Waiting {
    call: IncomingCall,
    request: Message,
    /// Every session id it was published under, the first first.
    sessions: Vec<SessionId>,
    until: Instant,
    again_at: Instant,
}

/// What a session's command means for the new calls waiting.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The session won its call: `rivals` are the other ids it was published under (to be
    /// told they lost), and its caller's transaction is `tx`.
    Won { tx: TxId, rivals: Vec<SessionId> },
    /// The session lost its call to `winner`, another copy: its command is dropped.
    Lost { winner: SessionId },
    /// Nothing to do with a waiting call: carried out.
    Other,
}

/// The new calls of an edge that no session acted on yet.
#[derive(Default)]
pub struct Unclaimed {
    calls: HashMap<TxId, Waiting>,
    sessions: HashMap<SessionId, TxId>,
    /// Sessions that lost their call: the winner, and until when they are told so.
    disowned: HashMap<SessionId, (SessionId, Instant)>,
}

impl Unclaimed {
    /// `call` (for `request`, on server transaction `tx`) was published; refused at `until`.
    pub fn insert(&mut self, tx: TxId, call: IncomingCall, request: Message, now: Instant, until: Instant) {
        let Ok(session) = SessionId::new(call.session_id.clone()) else { return };
        self.sessions.insert(session.clone(), tx);
        self.calls.insert(tx, Waiting { call, request, sessions: vec![session], until, again_at: now + AGAIN });
    }

    /// Forgets the call of transaction `tx` (it could not be published).
    pub fn remove(&mut self, tx: TxId) {
        if let Some(w) = self.calls.remove(&tx) {
            for s in &w.sessions {
                self.sessions.remove(s);
            }
        }
    }

    /// `session` gave the edge a command.
    pub fn claim(&mut self, session: &SessionId, now: Instant) -> Claim {
        if let Some(tx) = self.sessions.remove(session) {
            let Some(waiting) = self.calls.remove(&tx) else { return Claim::Other };
            let rivals: Vec<SessionId> = waiting.sessions.into_iter().filter(|s| s != session).collect();
            for rival in &rivals {
                self.sessions.remove(rival);
                self.disowned.insert(rival.clone(), (session.clone(), now + DISOWNED_FOR));
            }
            return Claim::Won { tx, rivals };
        }
        match self.disowned.get(session) {
            Some((winner, until)) if *until > now => Claim::Lost { winner: winner.clone() },
            _ => Claim::Other,
        }
    }

    /// The calls due to be published again, each under a new session id (`attempt` counts
    /// the times), with the transaction it answers.
    pub fn due_again(&mut self, now: Instant) -> Vec<(TxId, IncomingCall)> {
        let mut again = Vec::new();
        for (tx, w) in self.calls.iter_mut() {
            if again.len() == MOST_AT_ONCE {
                break;
            }
            if w.again_at > now || w.sessions.len() > MOST_AGAIN as usize {
                continue;
            }
            let session = SessionId::random();
            w.call.session_id = session.to_string();
            w.call.attempt = w.sessions.len() as u32;
            w.again_at = now + AGAIN;
            w.sessions.push(session.clone());
            self.sessions.insert(session, *tx);
            again.push((*tx, w.call.clone()));
        }
        again
    }

    /// The calls past their deadline, for refusal: transaction and INVITE. Forgets them,
    /// and disowned sessions past theirs.
    pub fn expired(&mut self, now: Instant) -> Vec<(TxId, Message)> {
        self.disowned.retain(|_, (_, until)| *until > now);
        let lost: Vec<TxId> = self.calls.iter().filter(|(_, w)| w.until <= now).map(|(tx, _)| *tx).collect();
        let mut refused = Vec::new();
        for tx in lost {
            if let Some(w) = self.calls.remove(&tx) {
                for s in &w.sessions {
                    self.sessions.remove(s);
                }
                refused.push((tx, w.request));
            }
        }
        refused
    }

    /// Every session id the waiting call of `tx` was published under (none once claimed).
    pub fn sessions_of(&self, tx: TxId) -> &[SessionId] {
        self.calls.get(&tx).map(|w| w.sessions.as_slice()).unwrap_or_default()
    }

    /// How many calls wait.
    pub fn len(&self) -> usize {
        self.calls.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(session: &SessionId) -> IncomingCall {
        IncomingCall { session_id: session.to_string(), ..Default::default() }
    }

    fn invite() -> Message {
        let text = "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-1\r\n\
                    From: <sip:a@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
                    Content-Length: 0\r\n\r\n";
        Message::parse_stream_message(bytes::Bytes::from(text)).unwrap()
    }

    fn waiting(now: Instant) -> (Unclaimed, TxId, SessionId) {
        let (mut u, tx, first) = (Unclaimed::default(), TxId::from_u64(7), SessionId::random());
        u.insert(tx, call(&first), invite(), now, now + Duration::from_secs(5));
        (u, tx, first)
    }

    #[test]
    fn a_call_claimed_at_once_is_never_published_again() {
        let now = Instant::now();
        let (mut u, tx, first) = waiting(now);
        assert_eq!(u.claim(&first, now), Claim::Won { tx, rivals: vec![] });
        assert!(u.due_again(now + Duration::from_secs(3)).is_empty());
        assert!(u.expired(now + Duration::from_secs(6)).is_empty());
        assert_eq!(u.claim(&first, now), Claim::Other, "its later commands are carried out");
    }

    #[test]
    fn an_unclaimed_call_goes_again_under_new_ids_then_is_refused() {
        let now = Instant::now();
        let (mut u, tx, first) = waiting(now);
        assert!(u.due_again(now + AGAIN - Duration::from_millis(1)).is_empty());
        let again = u.due_again(now + AGAIN);
        assert_eq!(again.len(), 1);
        let (again_tx, second) = &again[0];
        assert_eq!((*again_tx, second.attempt), (tx, 1));
        assert_ne!(second.session_id, first.to_string());
        let third = u.due_again(now + 2 * AGAIN);
        assert_eq!(third[0].1.attempt, 2);
        assert!(u.due_again(now + 4 * AGAIN).is_empty(), "at most {MOST_AGAIN} times");
        assert_eq!(u.sessions_of(tx).len(), 3);
        let refused = u.expired(now + Duration::from_secs(5));
        assert_eq!(refused.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![tx]);
        assert_eq!(u.len(), 0);
        assert_eq!(u.claim(&first, now + Duration::from_secs(5)), Claim::Other);
    }

    #[test]
    fn an_overloaded_edge_publishes_few_calls_again_at_once() {
        let now = Instant::now();
        let mut u = Unclaimed::default();
        for i in 0..MOST_AT_ONCE as u64 + 10 {
            u.insert(TxId::from_u64(i), call(&SessionId::random()), invite(), now, now + Duration::from_secs(5));
        }
        assert_eq!(u.due_again(now + AGAIN).len(), MOST_AT_ONCE);
        assert_eq!(u.due_again(now + AGAIN).len(), 10, "the rest at the next look");
    }

    #[test]
    fn the_first_copy_to_act_wins_and_the_others_are_disowned() {
        let now = Instant::now();
        let (mut u, tx, first) = waiting(now);
        let second = SessionId::new(u.due_again(now + AGAIN)[0].1.session_id.clone()).unwrap();
        // The first copy was only slow: it acts first, the second loses.
        assert_eq!(u.claim(&first, now + AGAIN), Claim::Won { tx, rivals: vec![second.clone()] });
        assert_eq!(u.claim(&second, now + AGAIN), Claim::Lost { winner: first.clone() });
        assert_eq!(u.claim(&first, now + AGAIN), Claim::Other);
        assert!(u.due_again(now + 3 * AGAIN).is_empty());
        // Disowned for a while, then forgotten.
        assert!(u.expired(now + DISOWNED_FOR + AGAIN).is_empty());
        assert_eq!(u.claim(&second, now + DISOWNED_FOR + AGAIN), Claim::Other);

        // The copy published again acts first: the first one loses.
        let (mut u, tx, first) = waiting(now);
        let second = SessionId::new(u.due_again(now + AGAIN)[0].1.session_id.clone()).unwrap();
        assert_eq!(u.claim(&second, now + AGAIN), Claim::Won { tx, rivals: vec![first.clone()] });
        assert_eq!(u.claim(&first, now + AGAIN), Claim::Lost { winner: second });
    }
}
