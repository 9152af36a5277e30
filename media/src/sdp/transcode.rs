//! Descriptions a transcoding B2BUA passes on. An offer gains the codecs the media node can
//! transcode to that it lacks (after the offerer's own, so a callee that shares a codec with
//! the caller still picks it and nothing is transcoded). An answer whose codec the other side
//! never offered is made the answer that side expects: its own first codec the media node
//! can transcode, on its own payload type.

use super::{Codec, SessionDescription};

/// Whether the media node can decode and encode `codec`.
pub fn transcodable(codec: &Codec) -> bool {
    let is = |name: &str| codec.name.eq_ignore_ascii_case(name);
    (is("PCMU") || is("PCMA")) && codec.clock_rate == 8000 || is("opus") && codec.clock_rate == 48000
}

/// The audio codecs (not events or comfort noise) of a description, in its order.
pub fn audio_codecs(desc: &SessionDescription) -> Vec<Codec> {
    let Some((_, audio)) = desc.audio() else { return Vec::new() };
    audio.codecs.iter().filter(|c| !c.is_telephone_event() && !c.is_comfort_noise()).cloned().collect()
}

/// `offer` with the transcodable codecs it lacks appended to its audio — unchanged if its
/// audio has no transcodable codec (there would be nothing to transcode from) or is rejected.
pub fn with_transcodable(offer: &SessionDescription) -> SessionDescription {
    let mut out = offer.clone();
    let Some(i) = out.audio().map(|(i, _)| i) else { return out };
    let audio = &mut out.media[i];
    if audio.port == 0 || !audio.codecs.iter().any(transcodable) {
        return out;
    }
    for wanted in [Codec::pcmu(), Codec::pcma(), Codec::opus(96)] {
        if audio.codecs.iter().any(|c| c.same_format(&wanted)) {
            continue;
        }
        let taken = |pt: u8| audio.formats.iter().any(|f| f.parse::<u8>() == Ok(pt));
        let pt = if Codec::is_dynamic(wanted.payload_type) {
            (96..128).find(|pt| !taken(*pt))
        } else {
            Some(wanted.payload_type).filter(|pt| !taken(*pt))
        };
        let Some(pt) = pt else { continue };
        audio.formats.push(pt.to_string());
        audio.codecs.push(Codec { payload_type: pt, ..wanted });
    }
    out
}

/// `answer` as the side that made `offer` must receive it: unchanged when its first audio
/// codec is one `offer` has; else with `offer`'s first transcodable codec (and `offer`'s
/// events, if it has them) in place of its codecs. `None` when `offer` has no
/// transcodable codec.
pub fn answer_within(answer: &SessionDescription, offer: &SessionDescription) -> Option<SessionDescription> {
    let chosen = audio_codecs(answer).into_iter().next()?;
    let offered = audio_codecs(offer);
    if offered.iter().any(|c| c.same_format(&chosen)) {
        return Some(answer.clone());
    }
    let ours = offered.into_iter().find(transcodable)?;
    let (_, offer_audio) = offer.audio()?;
    let mut out = answer.clone();
    let i = out.audio()?.0;
    let audio = &mut out.media[i];
    // The offerer's events stay: if the answerer has none, the media node reads them and
    // the session passes the digits on in SIP INFO.
    let offered_events = offer_audio.codecs.iter().find(|c| c.is_telephone_event()).cloned();
    audio.codecs = std::iter::once(ours).chain(offered_events).collect();
    audio.formats = audio.codecs.iter().map(|c| c.payload_type.to_string()).collect();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "v=0\r\no=p 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\n\
                         a=rtpmap:101 telephone-event/8000\r\n";
    const OPUS_ONLY: &str = "v=0\r\no=q 1 1 IN IP4 10.0.0.8\r\ns=-\r\nc=IN IP4 10.0.0.8\r\nt=0 0\r\nm=audio 7000 RTP/AVP 96 101\r\n\
                             a=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n";

    fn parse(text: &str) -> SessionDescription {
        SessionDescription::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn an_offer_gains_what_the_node_transcodes_after_its_own_codecs() {
        let offer = with_transcodable(&parse(PHONE));
        let names: Vec<(u8, String)> = offer.audio().unwrap().1.codecs.iter().map(|c| (c.payload_type, c.name.clone())).collect();
        assert_eq!(
            names,
            [(0, "PCMU"), (101, "telephone-event"), (8, "PCMA"), (96, "opus")].map(|(pt, n)| (pt, n.to_owned())).to_vec()
        );
        assert!(offer.to_string().contains("m=audio 6000 RTP/AVP 0 101 8 96\r\n"), "{offer}");
        assert_eq!(with_transcodable(&offer), offer, "once");
        let g729 = parse(&PHONE.replace("RTP/AVP 0 101", "RTP/AVP 18"));
        assert_eq!(with_transcodable(&g729), g729, "nothing to transcode from");
    }

    #[test]
    fn an_answer_the_offerer_cannot_take_becomes_its_own_codec() {
        let caller = parse(PHONE);
        let same = parse(&PHONE.replace("10.0.0.9", "10.0.0.7"));
        assert_eq!(answer_within(&same, &caller), Some(same.clone()), "a shared codec passes");
        let answer = answer_within(&parse(OPUS_ONLY), &caller).unwrap();
        let text = answer.to_string();
        assert!(text.contains("m=audio 7000 RTP/AVP 0 101\r\n") && !text.contains("opus"), "{text}");
        let g729 = parse(&PHONE.replace("RTP/AVP 0 101", "RTP/AVP 18"));
        assert_eq!(answer_within(&parse(OPUS_ONLY), &g729), None);
    }
}
