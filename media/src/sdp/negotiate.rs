//! RFC 3264 offer/answer for one audio stream: build an offer from what we support, answer an
//! offer (one `m=` line per offered one, everything but the first usable audio stream
//! rejected with port 0), and apply the answer to an offer we made. Payload types are kept
//! per side: we send with the numbers the far end wrote, and receive with ours.

use std::net::{IpAddr, SocketAddr};

use super::{Codec, Direction, MediaDescription, NegotiationOptions, Origin, SdpError, SessionDescription};

/// What our side of a call can do, and where it receives.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    /// `o=` username.
    pub username: String,
    pub session_id: u64,
    /// Bumped by the caller for each new offer in a session (RFC 3264 §8).
    pub session_version: u64,
    /// Where we receive RTP.
    pub address: IpAddr,
    pub rtp_port: u16,
    /// Audio codecs in our order of preference, with the payload types we receive them on.
    pub codecs: Vec<Codec>,
    /// `telephone-event` formats we accept, one per clock rate.
    pub telephone_events: Vec<Codec>,
    pub ptime: Option<u32>,
    /// What we are willing to do: `SendRecv`, or `SendOnly` while we hold the far end.
    pub direction: Direction,
}

impl LocalMedia {
    /// G.711 µ-law and A-law, Opus on 111, RFC 4733 events at 8 and 48 kHz, 20 ms.
    pub fn new(address: IpAddr, rtp_port: u16) -> Self {
        Self {
            username: "callmesh".into(),
            session_id: 1,
            session_version: 1,
            address,
            rtp_port,
            codecs: vec![Codec::pcmu(), Codec::pcma(), Codec::opus(111)],
            telephone_events: vec![Codec::telephone_event(101, 8000), Codec::telephone_event(110, 48000)],
            ptime: Some(20),
            direction: Direction::SendRecv,
        }
    }

    fn origin(&self) -> Origin {
        Origin {
            username: self.username.clone(),
            session_id: self.session_id,
            session_version: self.session_version,
            address: self.address.to_string(),
        }
    }
}

/// RFC 4733 events as negotiated: the number we send them with and the one we receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub send_payload_type: u8,
    pub recv_payload_type: u8,
    pub clock_rate: u32,
}

/// The outcome of offer/answer for the audio stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    /// Where to send RTP; `None` while the far end wants nothing (port 0 or `c=0.0.0.0`).
    pub remote_rtp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    /// The codec of the call, carrying the payload type the far end receives it on.
    pub codec: Codec,
    /// The payload type we receive that codec on.
    pub recv_payload_type: u8,
    pub telephone_event: Option<TelephoneEvent>,
    /// Our side's direction: whether we send and whether we receive.
    pub direction: Direction,
    /// Packetisation time we send with, in ms (the far end's `a=ptime`, else 20).
    pub ptime: u32,
}

impl Negotiated {
    /// A stream of `codec` both ways on its own payload type, to `remote_rtp` (RTCP on the
    /// next port), 20 ms packets, no events: what a test phone or a recorder's decoder needs.
    pub fn plain(codec: Codec, remote_rtp: Option<SocketAddr>) -> Negotiated {
        Negotiated {
            remote_rtcp: remote_rtp.map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1))),
            remote_rtp,
            recv_payload_type: codec.payload_type,
            codec,
            telephone_event: None,
            direction: Direction::SendRecv,
            ptime: 20,
        }
    }
}

/// Why offer/answer failed. Every variant maps to 488 Not Acceptable Here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error(transparent)]
    Sdp(#[from] SdpError),
    #[error("no RTP audio stream offered")]
    NoAudio,
    #[error("no common codec (offered: {})", offered.join(", "))]
    NoCommonCodec { offered: Vec<String> },
    #[error("answer has {answered} media sections for {offered} offered")]
    MediaCountMismatch { offered: usize, answered: usize },
    #[error("the audio stream was rejected")]
    Rejected,
}

impl NegotiationError {
    /// The SIP status that answers an INVITE or re-INVITE failing this way.
    pub fn sip_status(&self) -> u16 {
        488
    }
}

/// Our offer: one audio stream with our codecs (the options decide which, and in what order).
pub fn build_offer(local: &LocalMedia, options: &NegotiationOptions) -> Result<SessionDescription, NegotiationError> {
    let mut codecs: Vec<Codec> = local.codecs.iter().filter(|c| options.allows(c)).cloned().collect();
    if codecs.is_empty() {
        return Err(NegotiationError::NoCommonCodec { offered: Vec::new() });
    }
    if let Some(first) = options.choose(&local.codecs, &codecs) {
        let preferred = codecs.remove(first);
        codecs.insert(0, preferred);
    }
    let rates: Vec<u32> = codecs.iter().map(|c| c.clock_rate).collect();
    codecs.extend(local.telephone_events.iter().filter(|t| rates.contains(&t.clock_rate)).cloned());
    Ok(session(local, vec![audio_section(local, codecs, local.direction, options)]))
}

/// Our answer to `offer`, and what it means for the call.
pub fn answer_offer(
    offer: &SessionDescription,
    local: &LocalMedia,
    options: &NegotiationOptions,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let (index, audio) = offer
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.kind == "audio" && m.proto.starts_with("RTP/") && m.port != 0)
        .ok_or(NegotiationError::NoAudio)?;
    let candidates: Vec<Codec> = audio
        .codecs
        .iter()
        .filter(|c| is_audio_codec(c) && options.allows(c) && local.codecs.iter().any(|l| l.same_format(c)))
        .cloned()
        .collect();
    let chosen = options.choose(&local.codecs, &candidates).and_then(|i| candidates.get(i).cloned());
    let Some(offered_codec) = chosen else {
        return Err(NegotiationError::NoCommonCodec { offered: audio.codecs.iter().map(|c| c.name.clone()).collect() });
    };
    let mut codec = offered_codec.clone();
    if let Some(ours) = local.codecs.iter().find(|l| l.same_format(&codec)).and_then(|l| l.fmtp.clone()) {
        codec.fmtp = Some(ours);
    }
    let events = audio
        .codecs
        .iter()
        .find(|c| c.is_telephone_event() && c.clock_rate == codec.clock_rate)
        .filter(|_| local.telephone_events.iter().any(|t| t.clock_rate == codec.clock_rate));
    let remote_rtp = offer.rtp_addr(audio).filter(|a| !a.ip().is_unspecified());
    let mut offered_direction = offer.direction_of(audio);
    if remote_rtp.is_none() {
        // RFC 2543 hold (`c=0.0.0.0`): the offerer wants nothing sent to it.
        offered_direction = Direction::from_flags(offered_direction.sends(), false);
    }
    let direction = offered_direction.answer(local.direction);
    let mut answered = vec![codec.clone()];
    answered.extend(events.cloned().map(|mut e| {
        e.fmtp = Some("0-15".into());
        e
    }));
    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| if i == index { audio_section(local, answered.clone(), direction, options) } else { rejected(m) })
        .collect();
    let negotiated = Negotiated {
        remote_rtp,
        remote_rtcp: remote_rtp.map(|a| SocketAddr::new(a.ip(), audio.rtcp_port.unwrap_or(a.port().wrapping_add(1)))),
        recv_payload_type: codec.payload_type,
        codec,
        telephone_event: events.map(|e| TelephoneEvent {
            send_payload_type: e.payload_type,
            recv_payload_type: e.payload_type,
            clock_rate: e.clock_rate,
        }),
        direction,
        ptime: audio.ptime.unwrap_or(20),
    };
    Ok((session(local, media), negotiated))
}

/// What the far end's `answer` to our `offer` means for the call.
pub fn apply_answer(offer: &SessionDescription, answer: &SessionDescription) -> Result<Negotiated, NegotiationError> {
    if answer.media.len() != offer.media.len() {
        return Err(NegotiationError::MediaCountMismatch { offered: offer.media.len(), answered: answer.media.len() });
    }
    let (index, ours) = offer.audio().ok_or(NegotiationError::NoAudio)?;
    let theirs = &answer.media[index];
    if theirs.port == 0 {
        return Err(NegotiationError::Rejected);
    }
    let (codec, recv_payload_type) = theirs
        .codecs
        .iter()
        .filter(|c| is_audio_codec(c))
        .find_map(|c| ours.codecs.iter().find(|o| o.same_format(c)).map(|o| (c.clone(), o.payload_type)))
        .ok_or_else(|| NegotiationError::NoCommonCodec { offered: ours.codecs.iter().map(|c| c.name.clone()).collect() })?;
    let rate = codec.clock_rate;
    let telephone_event = theirs.codecs.iter().find(|c| c.is_telephone_event() && c.clock_rate == rate).and_then(|t| {
        let mine = ours.codecs.iter().find(|o| o.is_telephone_event() && o.clock_rate == rate)?;
        Some(TelephoneEvent { send_payload_type: t.payload_type, recv_payload_type: mine.payload_type, clock_rate: rate })
    });
    let remote_rtp = answer.rtp_addr(theirs).filter(|a| !a.ip().is_unspecified());
    let their_direction = answer.direction_of(theirs);
    let offered = offer.direction_of(ours);
    let direction =
        Direction::from_flags(offered.sends() && their_direction.receives(), offered.receives() && their_direction.sends());
    Ok(Negotiated {
        remote_rtp,
        remote_rtcp: remote_rtp.map(|a| SocketAddr::new(a.ip(), theirs.rtcp_port.unwrap_or(a.port().wrapping_add(1)))),
        codec,
        recv_payload_type,
        telephone_event,
        direction,
        ptime: theirs.ptime.unwrap_or(20),
    })
}

fn is_audio_codec(codec: &Codec) -> bool {
    !codec.is_telephone_event() && !codec.is_comfort_noise()
}

fn session(local: &LocalMedia, media: Vec<MediaDescription>) -> SessionDescription {
    SessionDescription {
        origin: local.origin(),
        session_name: "-".into(),
        connection: Some(local.address),
        attributes: Vec::new(),
        direction: None,
        media,
    }
}

fn audio_section(local: &LocalMedia, codecs: Vec<Codec>, direction: Direction, options: &NegotiationOptions) -> MediaDescription {
    MediaDescription {
        kind: "audio".into(),
        port: local.rtp_port,
        proto: "RTP/AVP".into(),
        formats: codecs.iter().map(|c| c.payload_type.to_string()).collect(),
        connection: None,
        codecs,
        direction: Some(direction),
        ptime: local.ptime,
        rtcp_port: None,
        attributes: options.custom_attributes.clone(),
    }
}

/// An offered stream we do not take: same type, protocol and formats, port 0 (RFC 3264 §6).
fn rejected(offered: &MediaDescription) -> MediaDescription {
    let format = offered.formats.first().cloned().unwrap_or_else(|| "0".into());
    MediaDescription {
        kind: offered.kind.clone(),
        port: 0,
        proto: offered.proto.clone(),
        formats: vec![format.clone()],
        connection: None,
        // A static payload type reads back as its codec: say so, so print → parse agrees.
        codecs: format.parse().ok().and_then(Codec::from_static).into_iter().collect(),
        direction: None,
        ptime: None,
        rtcp_port: None,
        attributes: Vec::new(),
    }
}
