//! Fuzzes the datagram parser, then every accessor and validation on what it accepts.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sip::message::validate::{validate_request, validate_response, ServerProfile};
use sip::message::{HeaderName, Message, ParseError};

fn exercise(m: &Message) {
    let _ = (m.request_uri(), m.from(), m.to(), m.vias(), m.cseq(), m.branch(), m.via_host());
    for name in [HeaderName::Contact, HeaderName::Route, HeaderName::RecordRoute] {
        let _ = m.name_addrs(name);
    }
    if m.is_request() {
        let _ = validate_request(m, &ServerProfile::default());
    } else {
        let _ = validate_response(m);
    }
}

fuzz_target!(|data: &[u8]| {
    match Message::parse_datagram(Bytes::copy_from_slice(data)) {
        Ok(m) => exercise(&m),
        Err(ParseError::Truncated { partial, .. }) => exercise(&partial),
        Err(_) => {}
    }
});
