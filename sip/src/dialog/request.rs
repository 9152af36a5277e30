//! In-dialog request construction (RFC 3261 §12.2.1.1): Request-URI and Route from the
//! route set with loose (`lr`) or strict routing, tags, Call-ID and CSeq; and the ACK for a
//! 2xx (§13.2.2.4), which reuses the INVITE's CSeq number.

use super::Dialog;
use crate::message::{Builder, HeaderName, Method, NameAddr, Uri, Via};

impl Dialog {
    fn loose_routing(&self) -> bool {
        self.route_set.first().and_then(|r| r.uri.as_sip()).is_some_and(|u| u.params.contains("lr"))
    }

    /// Where the next in-dialog request is sent: the first route, or the remote target.
    pub fn next_hop(&self) -> &Uri {
        self.route_set.first().map(|r| &r.uri).unwrap_or(&self.remote_target)
    }

    fn start(&self, method: &Method, seq: u32, via: Option<&Via>) -> Builder {
        let (request_uri, routes): (&Uri, Vec<NameAddr>) = if self.route_set.is_empty() || self.loose_routing() {
            (&self.remote_target, self.route_set.clone())
        } else {
            let mut routes = self.route_set[1..].to_vec();
            routes.push(NameAddr::new(self.remote_target.clone()));
            (&self.route_set[0].uri, routes)
        };
        let mut b = Builder::request(method, request_uri);
        if let Some(via) = via {
            b = b.header(HeaderName::Via, via);
        }
        for r in routes {
            b = b.header(HeaderName::Route, r);
        }
        b.header(HeaderName::MaxForwards, 70)
            .header(HeaderName::From, &self.local)
            .header(HeaderName::To, &self.remote)
            .header(HeaderName::CallId, &self.id.call_id)
            .header(HeaderName::CSeq, format_args!("{seq} {method}"))
    }

    /// Starts an in-dialog request with the next CSeq. The caller adds what the method
    /// needs (Contact for a target refresh, a body) and builds it. Without `via`, the
    /// transport element that sends it adds its own (`Message::with_top_via`).
    pub fn request(&mut self, method: Method, via: Option<&Via>) -> Builder {
        self.local_seq += 1;
        self.start(&method, self.local_seq, via)
    }

    /// The ACK for the 2xx to our INVITE with CSeq number `invite_seq`.
    pub fn ack(&self, invite_seq: u32, via: Option<&Via>) -> Builder {
        self.start(&Method::Ack, invite_seq, via)
    }
}

#[cfg(test)]
mod tests {
    use crate::dialog::{Dialog, DialogState};
    use crate::message::{Builder, HeaderName, HostPort, Message, Method, Transport, Via};
    use bytes::Bytes;

    fn invite() -> Message {
        Message::parse_datagram(Bytes::from_static(
            b"INVITE sip:bob@biloxi.example SIP/2.0\r\nVia: SIP/2.0/UDP pc33.example;branch=z9hG4bK1\r\n\
From: Alice <sip:alice@atlanta.example>;tag=a\r\nTo: Bob <sip:bob@biloxi.example>\r\nCall-ID: c1\r\n\
CSeq: 10 INVITE\r\nContact: <sip:alice@pc33.example>\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap()
    }

    fn via() -> Via {
        Via::new(Transport::Udp, HostPort::parse("pc33.example").unwrap(), "z9hG4bK2")
    }

    fn ok(rr: &[&str], code: u16) -> Message {
        let mut b = Builder::response_to(&invite(), code, "", Some("b")).header(HeaderName::Contact, "<sip:bob@192.0.2.4>");
        for r in rr {
            b = b.header(HeaderName::RecordRoute, r);
        }
        b.build().unwrap()
    }

    #[test]
    fn uac_loose_routing_keeps_the_route_set_and_targets_the_contact() {
        let mut d = Dialog::uac(&invite(), &ok(&["<sip:p2.example;lr>", "<sip:p1.example;lr>"], 200)).unwrap();
        assert_eq!(d.state, DialogState::Confirmed);
        let bye = d.request(Method::Bye, Some(&via())).build().unwrap();
        assert_eq!(bye.request_uri_str(), Some("sip:bob@192.0.2.4"));
        let routes: Vec<_> = bye.header_values(HeaderName::Route).collect();
        assert_eq!(routes, ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
        assert_eq!(bye.cseq(), Some((11, &Method::Bye)));
        assert_eq!((bye.from_tag(), bye.to_tag()), (Some("a"), Some("b")));
        assert_eq!(d.next_hop().to_string(), "sip:p1.example;lr");
        let ack = d.ack(10, Some(&via())).build().unwrap();
        assert_eq!(ack.cseq(), Some((10, &Method::Ack)));
    }

    #[test]
    fn strict_routing_puts_the_first_route_in_the_request_uri() {
        let mut d = Dialog::uac(&invite(), &ok(&["<sip:p2.example>", "<sip:p1.example>"], 200)).unwrap();
        let bye = d.request(Method::Bye, Some(&via())).build().unwrap();
        assert_eq!(bye.request_uri_str(), Some("sip:p1.example"));
        let routes: Vec<_> = bye.header_values(HeaderName::Route).collect();
        assert_eq!(routes, ["<sip:p2.example>", "<sip:bob@192.0.2.4>"]);
    }

    #[test]
    fn uas_side_checks_cseq_order_and_refreshes_the_target() {
        let req = invite();
        let mut d = Dialog::uas(&req, "b").unwrap();
        assert_eq!(d.state, DialogState::Early);
        d.confirm();
        let reinvite = |seq: u32, contact: &str| {
            Message::parse_datagram(Bytes::from(format!(
                "INVITE sip:bob@192.0.2.4 SIP/2.0\r\nVia: SIP/2.0/UDP pc33.example;branch=z9hG4bK{seq}\r\n\
From: <sip:alice@atlanta.example>;tag=a\r\nTo: <sip:bob@biloxi.example>;tag=b\r\nCall-ID: c1\r\nCSeq: {seq} INVITE\r\n\
Contact: <{contact}>\r\nContent-Length: 0\r\n\r\n"
            )))
            .unwrap()
        };
        assert!(d.matches(&reinvite(11, "sip:x@h")));
        d.on_request(&reinvite(11, "sip:alice@10.0.0.9")).unwrap();
        assert_eq!(d.remote_target.to_string(), "sip:alice@10.0.0.9");
        let err = d.on_request(&reinvite(5, "sip:x@h")).unwrap_err();
        assert_eq!(err.status(), 500);
        let bye = d.request(Method::Bye, Some(&via())).build().unwrap();
        assert_eq!((bye.from_tag(), bye.to_tag(), bye.cseq().unwrap().0), (Some("b"), Some("a"), 1));
    }
}
