//! One terminated audio stream: what a negotiation agreed turned into the state that sends
//! and receives it — the codec, the RTP sender and receiver (RFC 3550), the jitter buffer
//! with loss concealment, and RFC 4733 digits in. RTP packets go in with their arrival
//! time, decoded frames come out on the playout clock, PCM frames go in and RTP packets
//! come out. Sans-IO: the SDK's call media and the media node's conference and prompt legs
//! drive it from their own sockets and clocks.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rtp::packet::Packet;

use crate::codec::{self, AudioCodec, CodecError};
use crate::dtmf::{DtmfDigit, DtmfReceiver};
use crate::jitter::{Concealer, JitterBuffer, JitterConfig, Playout};
use crate::rtp::{Arrival, RtpReceiver, RtpSender};
use crate::sdp::Negotiated;

/// What became of a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Audio, queued for playout.
    Audio,
    /// An RFC 4733 event, read.
    Event,
    /// A jump in sequence numbers not yet believed (RFC 3550 A.1): not played.
    Rejected,
    /// A payload type that is neither the codec nor events: dropped.
    Foreign,
}

/// The state of one negotiated audio stream.
pub struct Endpoint {
    pub negotiated: Negotiated,
    pub codec: Box<dyn AudioCodec>,
    /// PCM rate of the codec's frames.
    pub rate: u32,
    /// Samples per packet at `rate`.
    pub frame_samples: usize,
    pub sender: RtpSender,
    pub receiver: RtpReceiver,
    pub jitter: JitterBuffer<Bytes>,
    pub concealer: Concealer,
    pub dtmf_in: Option<DtmfReceiver>,
}

impl Endpoint {
    /// The stream `n` describes; Opus runs at `opus_rate` Hz.
    pub fn new(n: Negotiated, opus_rate: u32) -> Result<Endpoint, CodecError> {
        let codec = codec::for_sdp(&n.codec, opus_rate)?;
        let rate = codec.sample_rate();
        let ptime = n.ptime.clamp(10, 60);
        let mut receiver = RtpReceiver::new(n.codec.clock_rate);
        receiver.set_event_payload_type(n.telephone_event.map(|t| t.recv_payload_type));
        let jitter_cfg = JitterConfig { frame: Duration::from_millis(u64::from(ptime)), ..JitterConfig::default() };
        Ok(Endpoint {
            codec,
            rate,
            frame_samples: codec::frame_samples(rate, ptime),
            sender: RtpSender::random(n.codec.payload_type),
            receiver,
            jitter: JitterBuffer::new(jitter_cfg, n.codec.clock_rate),
            concealer: Concealer::default(),
            dtmf_in: n.telephone_event.map(|t| DtmfReceiver::new(t.clock_rate)),
            negotiated: n,
        })
    }

    /// A new negotiation of the same codec (a re-INVITE): payload types and direction follow.
    pub fn renegotiate(&mut self, n: Negotiated) {
        self.sender.set_payload_type(n.codec.payload_type);
        self.receiver.set_event_payload_type(n.telephone_event.map(|t| t.recv_payload_type));
        self.negotiated = n;
    }

    /// A packet from the far end, arrived at `now`.
    pub fn receive(&mut self, packet: &Packet, now: Instant) -> Received {
        let pt = packet.header.payload_type;
        let event_pt = self.negotiated.telephone_event.map(|t| t.recv_payload_type);
        if pt != self.negotiated.recv_payload_type && Some(pt) != event_pt {
            return Received::Foreign;
        }
        if self.receiver.ssrc().is_some_and(|ssrc| ssrc != packet.header.ssrc) {
            self.jitter.restart();
        }
        if self.receiver.on_packet(&packet.header, packet.payload.len(), now) == Arrival::Rejected {
            return Received::Rejected;
        }
        if Some(pt) == event_pt {
            if let Some(d) = &mut self.dtmf_in {
                d.on_packet(packet.header.timestamp, &packet.payload, now);
            }
            return Received::Event;
        }
        self.jitter.push(packet.header.sequence_number, packet.header.timestamp, packet.payload.clone(), now);
        Received::Audio
    }

    /// The frame to play at `now`: decoded, or concealed when its packet is missing; `None`
    /// while the buffer fills (or after the stream stopped).
    pub fn playout(&mut self, now: Instant) -> Option<Vec<i16>> {
        let mut pcm = Vec::with_capacity(self.frame_samples);
        match self.jitter.pop(now) {
            Playout::Frame(payload) => {
                self.codec.decode(&payload, &mut pcm).ok()?;
                self.concealer.good(&pcm);
            }
            Playout::Missing => {
                if !self.codec.conceal(self.frame_samples, &mut pcm).unwrap_or(false) {
                    self.concealer.conceal(self.frame_samples, &mut pcm);
                }
            }
            Playout::Buffering => return None,
        }
        Some(pcm)
    }

    /// A digit the far end finished sending, by `now`.
    pub fn digit(&mut self, now: Instant) -> Option<DtmfDigit> {
        self.dtmf_in.as_mut()?.poll(now)
    }

    /// `pcm` (one frame) encoded into the next RTP packet; on a codec error the RTP clock
    /// moves on and nothing is sent.
    pub fn encode(&mut self, pcm: &[i16]) -> Option<Packet> {
        let mut payload = Vec::with_capacity(pcm.len());
        if self.codec.encode(pcm, &mut payload).is_err() {
            self.sender.skip(pcm.len() as u32);
            return None;
        }
        Some(self.sender.audio(Bytes::from(payload), pcm.len() as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone;
    use crate::sdp::Codec;

    fn negotiated(codec: Codec) -> Negotiated {
        Negotiated::plain(codec, None)
    }

    #[test]
    fn what_one_end_encodes_the_other_plays_at_the_right_pitch() {
        for (codec, rate) in [(Codec::pcmu(), 8000), (Codec::pcma(), 8000), (Codec::opus(111), 48_000)] {
            let mut a = Endpoint::new(negotiated(codec.clone()), 48_000).unwrap();
            let mut b = Endpoint::new(negotiated(codec.clone()), 48_000).unwrap();
            assert_eq!((a.rate, a.frame_samples), (rate, rate as usize / 50));
            let tone = tone::sine(440.0, rate, rate as usize, 8000.0);
            let (start, mut heard) = (Instant::now(), Vec::new());
            for (i, frame) in tone.chunks(a.frame_samples).enumerate() {
                let now = start + Duration::from_millis(20 * i as u64);
                let packet = a.encode(frame).unwrap();
                assert_eq!(b.receive(&packet, now), Received::Audio);
                heard.extend(b.playout(now).unwrap_or_default());
            }
            let found = tone::dominant_tone(&heard[heard.len() / 2..], rate, &[440.0, 1000.0]).map(|(f, _)| f);
            assert_eq!(found, Some(440.0), "{}", codec.name);
        }
    }

    #[test]
    fn a_new_source_is_played_whatever_its_numbering() {
        let mut a = Endpoint::new(negotiated(Codec::pcmu()), 48_000).unwrap();
        let mut b = Endpoint::new(negotiated(Codec::pcmu()), 48_000).unwrap();
        let (first, second) = (tone::sine(440.0, 8000, 8000, 8000.0), tone::sine(1000.0, 8000, 8000, 8000.0));
        let (start, mut heard, mut last) = (Instant::now(), Vec::new(), (0u16, 0u32));
        for (i, frame) in first.chunks(160).chain(second.chunks(160)).enumerate() {
            let now = start + Duration::from_millis(20 * i as u64);
            let mut packet = a.encode(frame).unwrap();
            if i < 50 {
                last = (packet.header.sequence_number, packet.header.ssrc);
            } else {
                // Another sender (its media moved elsewhere): a new SSRC, numbered far behind.
                let n = (i - 50) as u16;
                packet.header.sequence_number = last.0.wrapping_sub(20_000).wrapping_add(n);
                packet.header.ssrc = last.1 ^ 1;
            }
            b.receive(&packet, now);
            heard.extend(b.playout(now).unwrap_or_default());
        }
        let end = &heard[heard.len() - 4000..];
        assert_eq!(tone::dominant_tone(end, 8000, &[440.0, 1000.0]).map(|(f, _)| f), Some(1000.0), "the new source is heard");
    }

    #[test]
    fn a_foreign_payload_type_is_not_played() {
        let mut b = Endpoint::new(negotiated(Codec::pcmu()), 48_000).unwrap();
        let mut other = Endpoint::new(negotiated(Codec::pcma()), 48_000).unwrap();
        let packet = other.encode(&[0; 160]).unwrap();
        assert_eq!(b.receive(&packet, Instant::now()), Received::Foreign);
    }
}
