//! Hostile input never panics: SDP that is huge, truncated, or full of bad numbers gives an
//! error; arbitrary bytes thrown at every parser (SDP, RTP, RTCP, DTMF) are survived.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use media::dtmf::DtmfReceiver;
use media::rtp::{RtpReceiver, parse_packet, rtcp};
use media::sdp::{LocalMedia, NegotiationOptions, SdpError, SessionDescription, answer_offer};
use proptest::prelude::*;

const VALID: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 101\r\n\
                     a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";

fn parse(text: &str) -> Result<SessionDescription, SdpError> {
    SessionDescription::parse(text.as_bytes())
}

#[test]
fn the_valid_baseline_parses() {
    let sdp = parse(VALID).unwrap();
    assert_eq!(sdp.media[0].codecs.len(), 2);
}

#[test]
fn oversized_bodies_are_refused_before_parsing() {
    let huge = format!("{VALID}{}", "a=x-padding:0123456789abcdef\r\n".repeat(1000));
    assert!(matches!(parse(&huge), Err(SdpError::TooLarge(n)) if n > 16 * 1024));
    let many = format!("{VALID}{}", "m=audio 0 RTP/AVP 0\r\n".repeat(40));
    assert!(matches!(parse(&many), Err(SdpError::TooManyMedia(41))));
}

#[test]
fn missing_lines_and_bad_numbers_are_errors() {
    let cases = [
        ("empty", String::new()),
        ("no version", VALID.replacen("v=0\r\n", "", 1)),
        ("no origin", VALID.replacen("o=- 1 1 IN IP4 192.0.2.1\r\n", "", 1)),
        ("no timing", VALID.replacen("t=0 0\r\n", "", 1)),
        ("no connection anywhere", VALID.replacen("c=IN IP4 192.0.2.1\r\n", "", 1)),
        ("port out of range", VALID.replacen("49170", "99999", 1)),
        ("payload type not a number", VALID.replacen("RTP/AVP 0 101", "RTP/AVP zero 101", 1)),
        ("rtpmap payload over 127", VALID.replacen("a=rtpmap:101", "a=rtpmap:300", 1)),
        ("rtpmap rate not a number", VALID.replacen("telephone-event/8000", "telephone-event/fast", 1)),
        ("bad address", VALID.replacen("c=IN IP4 192.0.2.1", "c=IN IP4 300.1.2.3", 1)),
        ("version 1", VALID.replacen("v=0", "v=1", 1)),
        ("ptime huge", VALID.replacen("a=ptime:20", "a=ptime:99999999999999999999999", 1)),
        ("no session name", VALID.replacen("s=-\r\n", "", 1)),
        ("an unknown type letter", format!("{VALID}x=unknown\r\n")),
        ("origin without its numbers", VALID.replacen("o=- 1 1 IN IP4", "o=- one 1 IN IP4", 1)),
        ("media without formats", VALID.replacen("m=audio 49170 RTP/AVP 0 101", "m=audio 49170 RTP/AVP", 1)),
        ("payload type over 127", VALID.replacen("RTP/AVP 0 101", "RTP/AVP 0 200", 1)),
    ];
    for (what, text) in cases {
        assert!(parse(&text).is_err(), "{what} should be refused");
    }
    assert_eq!(SessionDescription::parse(&[0xff, 0xfe, 0x00]), Err(SdpError::NotText));
}

#[test]
fn fields_offer_answer_never_reads_are_skipped() {
    let with_extras = VALID.replacen("t=0 0\r\n", "u=http://example.com\r\ne=a@b.c\r\np=+1 555\r\nt=0 0\r\nr=7d 1h 0 25h\r\n", 1);
    assert_eq!(parse(&with_extras).unwrap().media.len(), 1);
}

fn lines_of_valid() -> Vec<&'static str> {
    VALID.split("\r\n").filter(|l| !l.is_empty()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_any_parser(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SessionDescription::parse(&bytes);
        if let Some(packet) = parse_packet(&bytes) {
            let mut rx = RtpReceiver::new(8000);
            rx.on_packet(&packet.header, packet.payload.len(), Instant::now());
        }
        let _ = rtcp::parse(&bytes);
        let mut dtmf = DtmfReceiver::new(8000);
        dtmf.on_packet(0, &bytes, Instant::now());
        let _ = dtmf.poll(Instant::now());
    }

    #[test]
    fn mangled_sdp_lines_never_panic_and_good_ones_negotiate(
        drop_line in 0usize..9,
        garbage in "[ -~]{0,40}",
        position in 0usize..9,
    ) {
        let mut lines = lines_of_valid();
        if drop_line < lines.len() {
            lines.remove(drop_line);
        }
        let garbage_line = garbage.clone();
        lines.insert(position.min(lines.len()), &garbage_line);
        let text = lines.join("\r\n") + "\r\n";
        if let Ok(sdp) = SessionDescription::parse(text.as_bytes()) {
            let local = LocalMedia::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
            if let Ok((answer, _)) = answer_offer(&sdp, &local, &NegotiationOptions::default()) {
                // Whatever we answer parses back.
                prop_assert!(SessionDescription::parse(answer.to_string().as_bytes()).is_ok());
            }
        }
    }
}
