//! Transcoding in the relay: what one far end sends in a codec the other cannot receive is
//! decoded and encoded again in a codec it can (G.711 µ-law, A-law, Opus). Which packets
//! need it is decided once per payload type when a leg's codecs become known (`Paths`), so
//! the relay's common case — both far ends share the codec — stays a table lookup.
//!
//! Both codecs work on PCM at the lower of their natural rates (Opus decodes and encodes 8
//! kHz itself when the other side is G.711), so no resampling is needed between them. The
//! output is 20 ms frames (Opus takes 10, 20 or 30 ms; a G.711 far end gets what came), its
//! RTP timestamps on the destination's clock, mapped from the source's so RFC 4733 events
//! relayed beside the audio stay in step with it.

use media::codec::{self, AudioCodec, CodecError};
use media::sdp::{Codec, transcodable};

/// What the relay does with an RTP packet of a payload type, toward the other leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// As it comes (the codec is the same, or nothing is known about it).
    Pass,
    /// The same codec on another payload type.
    Renumber(u8),
    /// Decoded and encoded again: from the source codec at this index of the source leg's
    /// codecs, into the destination codec at that index of the destination leg's.
    Transcode { from: u8, to: u8 },
}

/// The path of every payload type from one leg toward the other.
#[derive(Debug, Clone)]
pub struct Paths([Path; 128]);

impl Default for Paths {
    fn default() -> Self {
        Paths([Path::Pass; 128])
    }
}

impl Paths {
    /// Paths from a far end that sends `from` toward one that receives `to` (either empty:
    /// everything passes, as before codecs were known).
    pub fn between(from: &[Codec], to: &[Codec]) -> Paths {
        let mut paths = Paths::default();
        if to.is_empty() {
            return paths;
        }
        let target = to.iter().position(transcodable);
        for (i, codec) in from.iter().enumerate().take(u8::MAX as usize) {
            let pt = usize::from(codec.payload_type & 0x7f);
            paths.0[pt] = match to.iter().find(|c| c.same_format(codec)) {
                Some(same) if same.payload_type == codec.payload_type => Path::Pass,
                Some(same) => Path::Renumber(same.payload_type),
                None => match target.filter(|_| transcodable(codec)) {
                    Some(t) => Path::Transcode { from: i as u8, to: t as u8 },
                    None => Path::Pass,
                },
            };
        }
        paths
    }

    pub fn of(&self, payload_type: u8) -> Path {
        self.0[usize::from(payload_type & 0x7f)]
    }
}

/// A relay's transcoding, both ways: each leg's codecs, the paths between them, and the
/// transcoder of each direction while one is needed.
#[derive(Default)]
pub struct Transcoding {
    codecs: [Vec<Codec>; 2],
    /// `paths[leg]`: from `leg` toward the other.
    paths: [Paths; 2],
    coders: [Option<Transcoder>; 2],
}

impl Transcoding {
    /// Leg `leg`'s far end sends and receives `codecs` (a new far end, or a new offer).
    pub fn set_codecs(&mut self, leg: usize, codecs: Vec<Codec>) {
        self.codecs[leg] = codecs;
        self.paths = [Paths::between(&self.codecs[0], &self.codecs[1]), Paths::between(&self.codecs[1], &self.codecs[0])];
    }

    /// Whether any payload type from either leg is transcoded.
    pub fn active(&self) -> bool {
        self.paths.iter().any(|p| p.0.iter().any(|p| matches!(p, Path::Transcode { .. })))
    }

    /// An RTP packet from `leg`, made what the other leg receives: handed to `emit` as it
    /// is, renumbered, or transcoded (then zero or more packets). Packets of other payload
    /// types (RFC 4733 events, comfort noise) while audio is transcoded join the transcoded
    /// stream: its SSRC, its sequence, its clock.
    pub fn relay(&mut self, leg: usize, packet: &mut [u8], mut emit: impl FnMut(&mut [u8])) {
        let pt = packet[1] & 0x7f;
        match self.paths[leg].of(pt) {
            Path::Pass => {
                if let Some(coder) = self.coders[leg].as_mut()
                    && !self.codecs[leg].iter().any(|c| c.payload_type == pt)
                {
                    coder.adopt(packet);
                }
                emit(packet)
            }
            Path::Renumber(to) => {
                packet[1] = packet[1] & 0x80 | to;
                emit(packet)
            }
            Path::Transcode { from, to } => {
                let (from, to) = (&self.codecs[leg][usize::from(from)], &self.codecs[1 - leg][usize::from(to)]);
                let coder = &mut self.coders[leg];
                if !coder.as_ref().is_some_and(|c| c.is(from, to)) {
                    *coder = Transcoder::new(from, to).map_err(|e| tracing::warn!(error = %e, "no transcoder")).ok();
                }
                if let Some(coder) = coder {
                    coder.packet(packet, emit);
                }
            }
        }
    }
}

/// One direction's transcoding, from one source codec into one destination codec.
pub struct Transcoder {
    from: Codec,
    to: Codec,
    decoder: Box<dyn AudioCodec>,
    encoder: Box<dyn AudioCodec>,
    /// Decoded PCM not yet encoded, and the destination timestamp of its first sample.
    pcm: Vec<i16>,
    pcm_ts: u32,
    /// Samples per output frame (0: whatever came, for G.711).
    frame: usize,
    /// The first source and destination timestamps: the mapping between the two clocks.
    base: Option<(u32, u32)>,
    ssrc: u32,
    seq: u16,
    payload: Vec<u8>,
}

/// The SSRC of transcoded packets differs from their source's, so the outgoing stream sees
/// a change of source when a call moves between relaying and transcoding.
const SSRC_MARK: u32 = 0x5452_4e53;

impl Transcoder {
    pub fn new(from: &Codec, to: &Codec) -> Result<Transcoder, CodecError> {
        let rate = natural_rate(from).min(natural_rate(to));
        let decoder = codec::for_sdp(from, rate)?;
        let encoder = codec::for_sdp(to, rate)?;
        let frame = if to.name.eq_ignore_ascii_case("opus") { codec::frame_samples(rate, 20) } else { 0 };
        Ok(Transcoder {
            from: from.clone(),
            to: to.clone(),
            decoder,
            encoder,
            pcm: Vec::with_capacity(rate as usize / 10),
            pcm_ts: 0,
            frame,
            base: None,
            ssrc: 0,
            seq: 0,
            payload: Vec::with_capacity(1500),
        })
    }

    /// Whether this transcoder is the one for `from` → `to`.
    pub fn is(&self, from: &Codec, to: &Codec) -> bool {
        self.from == *from && self.to == *to
    }

    /// The destination timestamp of source timestamp `ts`.
    pub fn map_ts(&mut self, ts: u32) -> u32 {
        let (src, dst) = *self.base.get_or_insert((ts, ts));
        let elapsed = u64::from(ts.wrapping_sub(src)) * u64::from(self.to.clock_rate) / u64::from(self.from.clock_rate);
        dst.wrapping_add(elapsed as u32)
    }

    /// Makes a packet relayed beside the transcoded audio part of its stream.
    fn adopt(&mut self, packet: &mut [u8]) {
        let ts = self.map_ts(u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]));
        packet[2..4].copy_from_slice(&self.seq.to_be_bytes());
        packet[4..8].copy_from_slice(&ts.to_be_bytes());
        packet[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
    }

    /// Transcodes one RTP packet of the source codec; each packet made is handed to `emit`
    /// (none while a frame fills, several when one packet carried more than a frame). A
    /// payload that does not decode is dropped.
    pub fn packet(&mut self, packet: &[u8], mut emit: impl FnMut(&mut [u8])) {
        let Some(payload) = rtp_payload(packet) else { return };
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        if self.base.is_none() {
            self.ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]) ^ SSRC_MARK;
            self.seq = u16::from_be_bytes([packet[2], packet[3]]);
        }
        let mapped = self.map_ts(ts);
        if self.pcm.is_empty() {
            self.pcm_ts = mapped;
        }
        if let Err(e) = self.decoder.decode(payload, &mut self.pcm) {
            tracing::debug!(error = %e, "a packet that does not decode was dropped");
            return;
        }
        let frame = if self.frame == 0 { self.pcm.len() } else { self.frame };
        let mut start = 0;
        let mut out = [0u8; 1500];
        while frame > 0 && self.pcm.len() - start >= frame {
            self.payload.clear();
            let samples = &self.pcm[start..start + frame];
            start += frame;
            if self.encoder.encode(samples, &mut self.payload).is_err() || self.payload.len() > out.len() - 12 {
                continue;
            }
            let ts = self.pcm_ts;
            self.pcm_ts =
                ts.wrapping_add((frame as u64 * u64::from(self.to.clock_rate) / u64::from(self.encoder.sample_rate())) as u32);
            out[0] = 0x80;
            out[1] = self.to.payload_type & 0x7f;
            out[2..4].copy_from_slice(&self.seq.to_be_bytes());
            out[4..8].copy_from_slice(&ts.to_be_bytes());
            out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
            out[12..12 + self.payload.len()].copy_from_slice(&self.payload);
            self.seq = self.seq.wrapping_add(1);
            emit(&mut out[..12 + self.payload.len()]);
        }
        self.pcm.drain(..start);
    }
}

/// The PCM rate a codec carries best: 8 kHz for G.711, 48 kHz for Opus.
fn natural_rate(codec: &Codec) -> u32 {
    if codec.name.eq_ignore_ascii_case("opus") { 48_000 } else { codec.clock_rate }
}

/// The payload of an RTP packet: after the fixed header, CSRCs and any extension, without
/// padding. `None` for a packet too short for what its header says.
fn rtp_payload(packet: &[u8]) -> Option<&[u8]> {
    let csrcs = usize::from(packet.first()? & 0x0f);
    let mut start = 12 + 4 * csrcs;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    packet.get(start..end).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::audio::tone;

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn paths_pass_shared_codecs_and_transcode_the_rest() {
        let caller = [Codec::pcmu(), Codec::new(18, "G729", 8000, 1)];
        let callee = [Codec::opus(111), Codec::new(98, "PCMU", 8000, 1)];
        let paths = Paths::between(&caller, &callee);
        assert_eq!(paths.of(0), Path::Renumber(98));
        assert_eq!(paths.of(18), Path::Pass, "nothing to decode it with");
        let back = Paths::between(&callee, &caller);
        assert_eq!(back.of(111), Path::Transcode { from: 0, to: 0 });
        assert_eq!(Paths::between(&caller, &[]).of(0), Path::Pass);
    }

    /// A 1 kHz tone in µ-law becomes Opus and back, timestamps on each side's clock.
    #[test]
    fn a_tone_crosses_from_pcmu_to_opus_and_back() {
        let (pcmu, opus) = (Codec::pcmu(), Codec::opus(111));
        let mut there = Transcoder::new(&pcmu, &opus).unwrap();
        let mut back = Transcoder::new(&opus, &pcmu).unwrap();
        let mut heard = Vec::new();
        let mut stamps = Vec::new();
        let samples = tone::sine(1000.0, 8000, 8000, 8000.0);
        for (i, chunk) in samples.chunks(160).enumerate() {
            let mut law = vec![0u8; 160];
            codec::g711::ulaw_encode(chunk, &mut law);
            there.packet(&rtp(0, i as u16, 1000 + 160 * i as u32, &law), |p| {
                assert_eq!(p[1], 111);
                stamps.push(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
                back.packet(p, |q| {
                    assert_eq!(q[1], 0);
                    heard.extend(q[12..].iter().map(|c| codec::g711::ulaw_to_linear(*c)));
                });
            });
        }
        assert_eq!(stamps.len(), 50);
        assert!(stamps.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 960), "20 ms on Opus' 48 kHz clock");
        let tail = &heard[heard.len() - 1600..];
        let (freq, _) = tone::dominant_tone(tail, 8000, &[500.0, 1000.0, 1500.0]).unwrap();
        assert_eq!(freq, 1000.0);
    }

    #[test]
    fn payloads_are_found_past_csrcs_extensions_and_padding() {
        let mut p = vec![0xb1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 9, 9, 9, 9, 0xbe, 0xde, 0, 1, 7, 7, 7, 7, 42, 43, 0, 2];
        assert_eq!(rtp_payload(&p), Some(&[42u8, 43][..]));
        p.truncate(14);
        assert_eq!(rtp_payload(&p), None);
    }
}
