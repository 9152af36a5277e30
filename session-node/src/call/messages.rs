//! The SIP messages a call sends: responses to the caller's INVITE, the INVITE to the
//! callee, responses to in-dialog requests. Our tags carry the session id; Contact points at
//! the edge, with the session as user.

use cluster::contracts;
use cluster::subjects::SessionId;
use sip::endpoint::peer_for_uri;
use sip::message::{Builder, HeaderName, Message, Method, NameAddr, ParseError, Uri};
use sip::transaction::TransportKind;

use super::{Call, Inbound};

/// The edge's URI with the session as user part.
pub fn contact(edge_uri: &str, session: &SessionId) -> String {
    edge_uri.replacen("sip:", &format!("sip:{session}@"), 1)
}

fn with_body(b: Builder, sdp: Option<String>) -> Builder {
    match sdp {
        Some(sdp) => b.body("application/sdp", sdp),
        None => b,
    }
}

pub fn caller_response(call: &Call, status: u16, reason: &str, sdp: Option<String>) -> Result<Message, ParseError> {
    let mut b = Builder::response_to(&call.caller.invite, status, reason, Some(&call.caller.tag));
    if (101..300).contains(&status) {
        b = b.header(HeaderName::Contact, format_args!("<{}>", call.caller.contact));
    }
    with_body(b, sdp).build()
}

/// The INVITE of the callee's leg: the caller's identity with our tag, our Call-ID,
/// Max-Forwards one lower than the caller's.
pub fn callee_invite(call: &Call, sdp: Option<String>) -> Result<Message, ParseError> {
    let target = Uri::parse(&call.callee.target)?;
    let mut from = call.caller.invite.from()?;
    from.params = Default::default();
    let from = from.with_tag(&call.callee.tag);
    let hops = call.caller.invite.max_forwards().unwrap_or(70).saturating_sub(1);
    let b = Builder::request(&Method::Invite, &target)
        .header(HeaderName::MaxForwards, hops)
        .header(HeaderName::From, from)
        .header(HeaderName::To, NameAddr::new(target.clone()))
        .header(HeaderName::CallId, format_args!("{}@callmesh", call.id))
        .header(HeaderName::CSeq, "1 INVITE")
        .header(HeaderName::Contact, format_args!("<{}>", call.caller.contact));
    with_body(b, sdp).build()
}

/// Where to send a request for `target` when no registered flow is known (an IP host).
pub fn destination(target: &str) -> Option<contracts::Peer> {
    let peer = peer_for_uri(&Uri::parse(target).ok()?, TransportKind::Udp)?;
    let transport = match peer.transport {
        TransportKind::Tcp => contracts::Transport::Tcp,
        TransportKind::Udp => contracts::Transport::Udp,
    };
    Some(contracts::Peer { transport: transport as i32, addr: peer.addr.to_string() })
}

pub fn in_dialog_response(
    call: &Call,
    inbound: &Inbound,
    status: u16,
    reason: &str,
    sdp: Option<String>,
) -> Result<Message, ParseError> {
    let mut b = Builder::response_to(&inbound.request, status, reason, None);
    if inbound.request.method() == Some(&Method::Invite) && (200..300).contains(&status) {
        b = b.header(HeaderName::Contact, format_args!("<{}>", call.caller.contact));
    }
    with_body(b, sdp).build()
}
