//! RFC 3264 offer/answer, driven by the examples of RFC 4317 as tables: an offer goes in,
//! and the test states what the answer must mean (which streams are taken, with which codec
//! and payload type, in which direction) — then the answer is printed, parsed back, and
//! applied as the offerer would, so both sides agree.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use media::sdp::{
    Attribute, Codec, Direction, LocalMedia, NegotiationError, NegotiationOptions, NegotiationStrategy, SessionDescription,
    answer_offer, apply_answer, build_offer,
};

fn sdp(lines: &[&str]) -> SessionDescription {
    let text = lines.join("\r\n") + "\r\n";
    SessionDescription::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn local() -> LocalMedia {
    LocalMedia::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 40000)
}

const HEAD: [&str; 5] =
    ["v=0", "o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com", "s=", "c=IN IP4 192.0.2.1", "t=0 0"];

fn offer(media: &[&str]) -> SessionDescription {
    let mut lines: Vec<&str> = HEAD.to_vec();
    lines.extend_from_slice(media);
    sdp(&lines)
}

/// One row: an offer's media sections, and what the answer must say.
struct Case {
    name: &'static str,
    media: &'static [&'static str],
    /// Port of each answered m-line is non-zero?
    accepted: &'static [bool],
    codec: &'static str,
    payload_type: u8,
    telephone_event: Option<u8>,
    direction: Direction,
}

const CASES: &[Case] = &[
    Case {
        name: "4317 §2.1 audio and video, we take audio only",
        media: &[
            "m=audio 49170 RTP/AVP 0 8 97",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:97 iLBC/8000",
            "m=video 51372 RTP/AVP 31 32",
            "a=rtpmap:31 H261/90000",
            "a=rtpmap:32 MPV/90000",
        ],
        accepted: &[true, false],
        codec: "PCMU",
        payload_type: 0,
        telephone_event: None,
        direction: Direction::SendRecv,
    },
    Case {
        name: "4317 §2.4 two audio streams, the second is events only",
        media: &[
            "m=audio 49170 RTP/AVP 0 97",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:97 iLBC/8000",
            "m=audio 49172 RTP/AVP 98",
            "a=rtpmap:98 telephone-event/8000",
        ],
        accepted: &[true, false],
        codec: "PCMU",
        payload_type: 0,
        telephone_event: None,
        direction: Direction::SendRecv,
    },
    Case {
        name: "4317 §2.5 audio with telephone-event",
        media: &[
            "m=audio 49170 RTP/AVP 8 97 101",
            "a=rtpmap:97 iLBC/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-11",
        ],
        accepted: &[true],
        codec: "PCMA",
        payload_type: 8,
        telephone_event: Some(101),
        direction: Direction::SendRecv,
    },
    Case {
        name: "4317 §3.1 hold: a sendonly offer is answered recvonly",
        media: &["m=audio 49170 RTP/AVP 0", "a=sendonly"],
        accepted: &[true],
        codec: "PCMU",
        payload_type: 0,
        telephone_event: None,
        direction: Direction::RecvOnly,
    },
    Case {
        name: "4317 §3.1 hold with inactive",
        media: &["m=audio 49170 RTP/AVP 0", "a=inactive"],
        accepted: &[true],
        codec: "PCMU",
        payload_type: 0,
        telephone_event: None,
        direction: Direction::Inactive,
    },
    Case {
        name: "recvonly offer is answered sendonly",
        media: &["m=audio 49170 RTP/AVP 0", "a=recvonly"],
        accepted: &[true],
        codec: "PCMU",
        payload_type: 0,
        telephone_event: None,
        direction: Direction::SendOnly,
    },
    Case {
        name: "4317 §3.3 a removed video stream (port 0) stays removed",
        media: &["m=audio 49170 RTP/AVP 0", "m=video 0 RTP/AVP 31"],
        accepted: &[true, false],
        codec: "PCMU",
        payload_type: 0,
        telephone_event: None,
        direction: Direction::SendRecv,
    },
    Case {
        name: "dynamic payload type of the offer kept for Opus",
        media: &["m=audio 49170 RTP/AVP 109 0", "a=rtpmap:109 opus/48000/2", "a=rtpmap:0 PCMU/8000"],
        accepted: &[true],
        codec: "opus",
        payload_type: 109,
        telephone_event: None,
        direction: Direction::SendRecv,
    },
    Case {
        name: "a T.38 image stream beside audio is rejected, not dropped",
        media: &["m=audio 49170 RTP/AVP 0", "m=image 49172 udptl t38"],
        accepted: &[true, false],
        codec: "PCMU",
        payload_type: 0,
        telephone_event: None,
        direction: Direction::SendRecv,
    },
];

#[test]
fn answers_follow_rfc_4317_and_round_trip() {
    for case in CASES {
        let offered = offer(case.media);
        let (answer, negotiated) =
            answer_offer(&offered, &local(), &NegotiationOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let ports: Vec<bool> = answer.media.iter().map(|m| m.port != 0).collect();
        assert_eq!(ports, case.accepted, "{}: accepted streams", case.name);
        assert_eq!(negotiated.codec.name, case.codec, "{}", case.name);
        assert_eq!(negotiated.codec.payload_type, case.payload_type, "{}", case.name);
        assert_eq!(negotiated.telephone_event.map(|t| t.send_payload_type), case.telephone_event, "{}", case.name);
        assert_eq!(negotiated.direction, case.direction, "{}", case.name);
        assert_eq!(negotiated.remote_rtp, Some("192.0.2.1:49170".parse().unwrap()), "{}", case.name);

        // The answer as the offerer receives it: printed, parsed, applied.
        let text = answer.to_string();
        let parsed = SessionDescription::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}\n{text}", case.name));
        assert_eq!(parsed, answer, "{}: print → parse", case.name);
        if case.media.iter().all(|l| !l.starts_with("m=image")) {
            let seen_by_offerer = apply_answer(&offered, &parsed).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(seen_by_offerer.codec.name, case.codec, "{}", case.name);
            assert_eq!(seen_by_offerer.remote_rtp, Some(SocketAddr::new(local().address, 40000)));
        }
    }
}

#[test]
fn rfc_2543_hold_with_zero_address_means_send_nothing() {
    let offered = sdp(&["v=0", "o=- 1 2 IN IP4 192.0.2.1", "s=-", "c=IN IP4 0.0.0.0", "t=0 0", "m=audio 49170 RTP/AVP 0"]);
    let (_, n) = answer_offer(&offered, &local(), &NegotiationOptions::default()).unwrap();
    assert_eq!(n.remote_rtp, None);
    assert_eq!(n.direction, Direction::RecvOnly);
}

#[test]
fn ipv6_connection_and_ptime_are_understood() {
    let offered = sdp(&[
        "v=0",
        "o=- 1 2 IN IP6 2001:db8::1",
        "s=-",
        "c=IN IP6 2001:db8::1",
        "t=0 0",
        "m=audio 50000 RTP/AVP 8",
        "a=ptime:30",
    ]);
    let mut ours = local();
    ours.address = "2001:db8::9".parse().unwrap();
    let (answer, n) = answer_offer(&offered, &ours, &NegotiationOptions::default()).unwrap();
    assert_eq!(n.remote_rtp, Some("[2001:db8::1]:50000".parse().unwrap()));
    assert_eq!(n.ptime, 30);
    let text = answer.to_string();
    assert!(text.contains("c=IN IP6 2001:db8::9\r\n") && text.contains("o=callmesh 1 1 IN IP6 2001:db8::9\r\n"), "{text}");
}

fn pcmu_opus_pcma() -> SessionDescription {
    offer(&["m=audio 49170 RTP/AVP 0 111 8", "a=rtpmap:111 opus/48000/2"])
}

fn chosen(options: NegotiationOptions) -> Result<String, NegotiationError> {
    answer_offer(&pcmu_opus_pcma(), &local(), &options).map(|(_, n)| n.codec.name)
}

#[test]
fn strategies_pick_the_codec_the_seeds_describe() {
    let with = |strategy| NegotiationOptions { strategy, ..Default::default() };
    assert_eq!(chosen(with(NegotiationStrategy::FirstMatch)).unwrap(), "PCMU");
    assert_eq!(chosen(with(NegotiationStrategy::PreferWideband)).unwrap(), "opus");
    let narrow_first = offer(&["m=audio 49170 RTP/AVP 111 8", "a=rtpmap:111 opus/48000/2"]);
    let (_, n) = answer_offer(&narrow_first, &local(), &with(NegotiationStrategy::PreferNarrowband)).unwrap();
    assert_eq!(n.codec.name, "PCMA");
    let last = NegotiationStrategy::Custom(Arc::new(|_ours, theirs| theirs.last().cloned()));
    assert_eq!(chosen(with(last)).unwrap(), "PCMA");
    let none = NegotiationStrategy::Custom(Arc::new(|_, _| None));
    assert!(matches!(chosen(with(none)), Err(NegotiationError::NoCommonCodec { .. })));
}

#[test]
fn required_codecs_restrict_the_choice_or_fail_with_488() {
    let required = |names: &[&str]| NegotiationOptions {
        required_codecs: names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    assert_eq!(chosen(required(&["pcma"])).unwrap(), "PCMA");
    let err = chosen(required(&["G722"])).unwrap_err();
    assert_eq!(err.sip_status(), 488);
    assert!(err.to_string().contains("PCMU"), "{err}");
    let offered = build_offer(&local(), &required(&["PCMA"])).unwrap();
    let codecs: Vec<&str> = offered.media[0].codecs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(codecs, ["PCMA", "telephone-event"]);
}

#[test]
fn no_audio_or_no_common_codec_is_488() {
    let video_only = offer(&["m=video 51372 RTP/AVP 31"]);
    assert_eq!(answer_offer(&video_only, &local(), &NegotiationOptions::default()).unwrap_err(), NegotiationError::NoAudio);
    let g729 = offer(&["m=audio 49170 RTP/AVP 18"]);
    let err = answer_offer(&g729, &local(), &NegotiationOptions::default()).unwrap_err();
    assert_eq!(err, NegotiationError::NoCommonCodec { offered: vec!["G729".into()] });
}

#[test]
fn custom_attributes_are_added_to_our_sdp() {
    let options = NegotiationOptions {
        custom_attributes: vec![Attribute::new("x-callmesh-queue", Some("sales".into())), Attribute::new("x-flag", None)],
        ..Default::default()
    };
    let text = build_offer(&local(), &options).unwrap().to_string();
    assert!(text.contains("a=x-callmesh-queue:sales\r\n") && text.contains("a=x-flag\r\n"), "{text}");
}

#[test]
fn our_offer_applied_to_an_answer_with_other_payload_numbers() {
    let ours = build_offer(&local(), &NegotiationOptions::default()).unwrap();
    let text = ours.to_string();
    assert!(text.contains("m=audio 40000 RTP/AVP 0 8 111 101 110\r\n"), "{text}");
    // The far end answers Opus on 96 and events on 100: we send with theirs, receive ours.
    let answer = sdp(&[
        "v=0",
        "o=bob 1 1 IN IP4 192.0.2.2",
        "s=-",
        "c=IN IP4 192.0.2.2",
        "t=0 0",
        "m=audio 30000 RTP/AVP 96 100",
        "a=rtpmap:96 opus/48000/2",
        "a=rtpmap:100 telephone-event/48000",
        "a=recvonly",
    ]);
    let n = apply_answer(&ours, &answer).unwrap();
    assert_eq!((n.codec.name.as_str(), n.codec.payload_type, n.recv_payload_type), ("opus", 96, 111));
    let te = n.telephone_event.unwrap();
    assert_eq!((te.send_payload_type, te.recv_payload_type, te.clock_rate), (100, 110, 48000));
    assert_eq!(n.direction, Direction::SendOnly, "they only receive, so we only send");
    assert_eq!(n.remote_rtcp, Some("192.0.2.2:30001".parse().unwrap()));
}

#[test]
fn a_hold_offer_and_its_answer() {
    let mut holding = local();
    holding.direction = Direction::SendRecv.hold();
    holding.session_version = 2;
    let hold = build_offer(&holding, &NegotiationOptions::default()).unwrap();
    assert_eq!(hold.media[0].direction, Some(Direction::SendOnly));
    assert!(hold.to_string().contains("o=callmesh 1 2 IN IP4"));
    let mut far = local();
    far.address = "192.0.2.2".parse().unwrap();
    let (answer, theirs) = answer_offer(&hold, &far, &NegotiationOptions::default()).unwrap();
    assert_eq!(theirs.direction, Direction::RecvOnly);
    assert_eq!(apply_answer(&hold, &answer).unwrap().direction, Direction::SendOnly);
}

#[test]
fn answers_to_mismatched_or_rejecting_answers_are_errors() {
    let ours = build_offer(&local(), &NegotiationOptions::default()).unwrap();
    let two = offer(&["m=audio 30000 RTP/AVP 0", "m=video 0 RTP/AVP 31"]);
    assert!(matches!(apply_answer(&ours, &two), Err(NegotiationError::MediaCountMismatch { offered: 1, answered: 2 })));
    let rejected = offer(&["m=audio 0 RTP/AVP 0"]);
    assert_eq!(apply_answer(&ours, &rejected), Err(NegotiationError::Rejected));
    let static_only = Codec::from_static(9).unwrap();
    assert!(static_only.is_wideband() && static_only.clock_rate == 8000, "G.722 is wideband at an 8 kHz RTP clock");
}
