//! Conversions between the SIP stack's flows and the bus contracts' `Peer`.

use cluster::contracts;
use sip::transaction::{Peer, TransportKind};

pub fn to_contract(peer: Peer) -> contracts::Peer {
    let transport = match peer.transport {
        TransportKind::Udp => contracts::Transport::Udp,
        TransportKind::Tcp => contracts::Transport::Tcp,
    };
    contracts::Peer { transport: transport as i32, addr: peer.addr.to_string() }
}

/// The flow a contract `Peer` names; `None` when its address does not parse.
pub fn from_contract(peer: &contracts::Peer) -> Option<Peer> {
    let addr = peer.addr.parse().ok()?;
    let transport = match contracts::Transport::try_from(peer.transport) {
        Ok(contracts::Transport::Tcp) => TransportKind::Tcp,
        _ => TransportKind::Udp,
    };
    Some(Peer { transport, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for p in [Peer::udp("127.0.0.1:5060".parse().unwrap()), Peer::tcp("[::1]:5070".parse().unwrap())] {
            assert_eq!(from_contract(&to_contract(p)), Some(p));
        }
        assert_eq!(from_contract(&contracts::Peer { transport: 1, addr: "nonsense".into() }), None);
    }
}
