//! Stream direction attributes (RFC 3264 §5.1, §6.1, §8.4): how an answer mirrors an offer,
//! and what "on hold" means.

use std::fmt;

/// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive`, from the describing side's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    pub(crate) fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// The direction an answerer willing to do `local` writes for a stream offered as `self`:
    /// it sends only if the offerer receives, and receives only if the offerer sends.
    pub fn answer(self, local: Direction) -> Direction {
        Direction::from_flags(self.receives() && local.sends(), self.sends() && local.receives())
    }

    /// The direction a party puts in its offer to place the other on hold (RFC 3264 §8.4):
    /// it keeps sending (music on hold) but no longer receives.
    pub fn hold(self) -> Direction {
        Direction::from_flags(self.sends(), false)
    }

    /// Whether an offer describing a stream this way puts the other party on hold: the
    /// offerer no longer wants to receive (`sendonly` or `inactive`).
    pub fn is_hold(self) -> bool {
        !self.receives()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::*;

    #[test]
    fn answers_mirror_offers_per_rfc_3264() {
        // (offered, what we are willing to do, expected answer)
        let table = [
            (SendRecv, SendRecv, SendRecv),
            (SendOnly, SendRecv, RecvOnly),
            (RecvOnly, SendRecv, SendOnly),
            (Inactive, SendRecv, Inactive),
            (SendRecv, SendOnly, SendOnly),
            (SendOnly, SendOnly, Inactive),
            (SendRecv, Inactive, Inactive),
        ];
        for (offered, local, expected) in table {
            assert_eq!(offered.answer(local), expected, "offer {offered}, local {local}");
        }
    }

    #[test]
    fn hold_stops_receiving_and_is_recognised() {
        assert_eq!(SendRecv.hold(), SendOnly);
        assert_eq!(RecvOnly.hold(), Inactive);
        assert!(SendOnly.is_hold() && Inactive.is_hold());
        assert!(!SendRecv.is_hold() && !RecvOnly.is_hold());
    }
}
