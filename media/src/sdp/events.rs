//! RFC 4733 telephone events in descriptions a B2BUA passes on: a caller that only knows
//! SIP INFO for DTMF is still offered to a callee *with* `telephone-event` (the media node
//! writes and reads those events, the session turns them into INFO and back), and such a
//! caller is answered *without* it.

use super::{Codec, SessionDescription};

/// The payload type of the first `telephone-event` of the description's audio.
pub fn telephone_event_pt(desc: &SessionDescription) -> Option<u8> {
    let (_, audio) = desc.audio()?;
    audio.codecs.iter().find(|c| c.is_telephone_event()).map(|c| c.payload_type)
}

/// `desc` with `telephone-event/8000` added to its audio, on payload type 101 or the first
/// free dynamic one — unchanged if it has events already, or if its first codec is not an
/// 8 kHz one (events share the audio's clock).
pub fn with_telephone_event(desc: &SessionDescription) -> SessionDescription {
    let mut out = desc.clone();
    let Some(i) = out.audio().map(|(i, _)| i) else { return out };
    let audio = &mut out.media[i];
    if audio.port == 0 || audio.codecs.iter().any(Codec::is_telephone_event) {
        return out;
    }
    let taken = |pt: u8| audio.formats.iter().any(|f| f.parse::<u8>() == Ok(pt));
    let Some(pt) = std::iter::once(101).chain(96..128).find(|pt| !taken(*pt)) else { return out };
    if audio.codecs.first().is_none_or(|c| c.clock_rate != 8000) {
        return out;
    }
    audio.formats.push(pt.to_string());
    audio.codecs.push(Codec::telephone_event(pt, 8000));
    out
}

/// `desc` without `telephone-event` in its audio.
pub fn without_telephone_event(desc: &SessionDescription) -> SessionDescription {
    let mut out = desc.clone();
    let Some(i) = out.audio().map(|(i, _)| i) else { return out };
    let audio = &mut out.media[i];
    let events: Vec<String> =
        audio.codecs.iter().filter(|c| c.is_telephone_event()).map(|c| c.payload_type.to_string()).collect();
    if events.len() == audio.formats.len() {
        return out; // nothing would be left
    }
    audio.formats.retain(|f| !events.contains(f));
    audio.codecs.retain(|c| !c.is_telephone_event());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE: &str = "v=0\r\no=p 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8\r\n";

    #[test]
    fn events_are_added_for_a_callee_and_removed_for_a_caller_without_them() {
        let phone = SessionDescription::parse(PHONE.as_bytes()).unwrap();
        assert_eq!(telephone_event_pt(&phone), None);
        let offered = with_telephone_event(&phone);
        assert_eq!(telephone_event_pt(&offered), Some(101));
        let text = offered.to_string();
        assert!(
            text.contains("m=audio 6000 RTP/AVP 0 8 101\r\n") && text.contains("a=rtpmap:101 telephone-event/8000"),
            "{text}"
        );
        assert_eq!(with_telephone_event(&offered), offered, "once");
        let answered = without_telephone_event(&offered);
        assert_eq!(telephone_event_pt(&answered), None);
        assert!(answered.to_string().contains("m=audio 6000 RTP/AVP 0 8\r\n"));
        let opus = SessionDescription::parse(PHONE.replace("RTP/AVP 0 8", "RTP/AVP 111\r\na=rtpmap:111 opus/48000/2").as_bytes())
            .unwrap();
        assert_eq!(telephone_event_pt(&with_telephone_event(&opus)), None, "events share the audio's clock");
    }
}
