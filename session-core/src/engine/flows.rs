//! SIP flows as the contracts carry them (`contracts::Peer`): in the engine's state, in the
//! session node's edge commands, in the routing decisions.

use contracts::{Peer as WirePeer, Transport as WireTransport};
use sip::transaction::{Peer, TransportKind};

/// A flow as the contracts carry it (the engine's state, edge commands).
pub fn peer_to_contract(p: &Peer) -> WirePeer {
    let transport = match p.transport {
        TransportKind::Udp => WireTransport::Udp,
        TransportKind::Tcp => WireTransport::Tcp,
    };
    WirePeer { transport: transport as i32, addr: p.addr.to_string() }
}

/// The flow a contract `Peer` names (UDP unless it says TCP); `None` when its address does
/// not parse.
pub fn peer_from_contract(p: &WirePeer) -> Option<Peer> {
    let addr = p.addr.parse().ok()?;
    Some(if p.transport == WireTransport::Tcp as i32 { Peer::tcp(addr) } else { Peer::udp(addr) })
}
