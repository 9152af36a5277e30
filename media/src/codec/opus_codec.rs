//! Opus (RFC 6716, RTP per RFC 7587) through `ropus`, a pure-Rust port of the reference
//! fixed-point codec (bit-exact with it; no C library, no cmake: docs/media.md has the choice
//! and its measurements). Mono VoIP mode, in-band FEC on, packet loss concealment from the
//! decoder. Opus has no 30 ms frame: a 30 ms frame is encoded as three 10 ms frames joined
//! into one packet by the repacketizer, which needs the three to share mode and bandwidth —
//! so those come from a second encoder, CELT-only (restricted low delay) at a fixed bandwidth,
//! made the first time a 30 ms frame is encoded.

use ropus::{OpusDecoder, OpusEncoder, OpusRepacketizer};

use super::{AudioCodec, CodecError, check_frame};

/// Largest Opus packet (RFC 6716 §3.2.1 bounds a frame's data well below this).
const MAX_PACKET: usize = 1500;

/// An Opus encoder and decoder pair for one call leg.
pub struct Opus {
    rate: u32,
    encoder: Box<OpusEncoder>,
    /// For 30 ms frames: constant mode and bandwidth, so 10 ms frames can be joined.
    encoder_30ms: Option<Box<OpusEncoder>>,
    decoder: Box<OpusDecoder>,
    scratch: Vec<i16>,
    packet: [u8; MAX_PACKET],
    parts: [[u8; MAX_PACKET]; 3],
}

impl Opus {
    /// Opus with PCM at `rate` Hz (8000, 12000, 16000, 24000 or 48000).
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        let mut encoder = OpusEncoder::new(rate as i32, 1, ropus::OPUS_APPLICATION_VOIP).map_err(failed)?;
        status(encoder.set_inband_fec(1))?;
        let decoder = OpusDecoder::new(rate as i32, 1).map_err(failed)?;
        Ok(Self {
            rate,
            encoder: Box::new(encoder),
            encoder_30ms: None,
            decoder: Box::new(decoder),
            scratch: vec![0; rate as usize * 120 / 1000],
            packet: [0; MAX_PACKET],
            parts: [[0; MAX_PACKET]; 3],
        })
    }

    /// Target bitrate in bits per second.
    pub fn set_bitrate(&mut self, bps: i32) -> Result<(), CodecError> {
        status(self.encoder.set_bitrate(bps))
    }
}

/// A CELT-only encoder whose packets all share one TOC configuration at a given frame size.
fn constant_encoder(rate: u32) -> Result<Box<OpusEncoder>, CodecError> {
    let mut encoder = OpusEncoder::new(rate as i32, 1, ropus::OPUS_APPLICATION_RESTRICTED_LOWDELAY).map_err(failed)?;
    let bandwidth = match rate {
        8000 => ropus::OPUS_BANDWIDTH_NARROWBAND,
        12000 => ropus::OPUS_BANDWIDTH_MEDIUMBAND,
        16000 => ropus::OPUS_BANDWIDTH_WIDEBAND,
        24000 => ropus::OPUS_BANDWIDTH_SUPERWIDEBAND,
        _ => ropus::OPUS_BANDWIDTH_FULLBAND,
    };
    status(encoder.set_bandwidth(bandwidth))?;
    Ok(Box::new(encoder))
}

/// A libopus-style status code (`OPUS_OK` or a negative error) as a result.
fn status(code: i32) -> Result<(), CodecError> {
    if code == ropus::OPUS_OK { Ok(()) } else { Err(failed(code)) }
}

/// The codec error for a libopus-style error code, named as libopus' `opus_strerror` does.
fn failed(code: i32) -> CodecError {
    let message = match code {
        ropus::OPUS_BAD_ARG => "invalid argument",
        ropus::OPUS_BUFFER_TOO_SMALL => "buffer too small",
        ropus::OPUS_INTERNAL_ERROR => "internal error",
        ropus::OPUS_INVALID_PACKET => "corrupted stream",
        ropus::OPUS_UNIMPLEMENTED => "request not implemented",
        _ => "unknown error",
    };
    CodecError::Failed { codec: "opus", message: format!("{message} ({code})") }
}

/// Bytes written, from a length-or-error result.
fn written(result: Result<i32, i32>) -> Result<usize, CodecError> {
    result.map(|n| n as usize).map_err(failed)
}

impl AudioCodec for Opus {
    fn name(&self) -> &'static str {
        "opus"
    }

    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        check_frame(pcm.len(), self.rate)?;
        let ten_ms = self.rate as usize / 100;
        if pcm.len() != 3 * ten_ms {
            let n = written(self.encoder.encode(pcm, pcm.len() as i32, &mut self.packet, MAX_PACKET as i32))?;
            out.extend_from_slice(&self.packet[..n]);
            return Ok(());
        }
        let encoder = match &mut self.encoder_30ms {
            Some(e) => e,
            slot => slot.insert(constant_encoder(self.rate)?),
        };
        let mut lens = [0usize; 3];
        for (i, chunk) in pcm.chunks(ten_ms).enumerate() {
            lens[i] = written(encoder.encode(chunk, ten_ms as i32, &mut self.parts[i], MAX_PACKET as i32))?;
        }
        let mut repacketizer = OpusRepacketizer::new();
        for (part, &len) in self.parts.iter().zip(&lens) {
            status(repacketizer.cat(&part[..len], len as i32))?;
        }
        let n = repacketizer.out(&mut self.packet, MAX_PACKET as i32);
        if n < 0 {
            return Err(failed(n));
        }
        out.extend_from_slice(&self.packet[..n as usize]);
        Ok(())
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() {
            return Err(CodecError::Failed { codec: "opus", message: "empty payload".into() });
        }
        let max = self.scratch.len() as i32;
        let n = written(self.decoder.decode(Some(payload), &mut self.scratch, max, false))?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<bool, CodecError> {
        let want = samples.min(self.scratch.len());
        let n = written(self.decoder.decode(None, &mut self.scratch[..want], want as i32, false))?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(true)
    }
}
