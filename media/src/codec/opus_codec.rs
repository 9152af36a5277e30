//! Opus (RFC 6716, RTP per RFC 7587) through libopus: mono VoIP mode, in-band FEC on, packet
//! loss concealment from the decoder. Opus has no 30 ms frame: a 30 ms frame is encoded as
//! three 10 ms frames joined into one packet by libopus' repacketizer, which needs the three
//! to share mode and bandwidth — so those come from a second encoder, CELT-only (restricted
//! low delay) at a fixed bandwidth, made the first time a 30 ms frame is encoded.

use super::{AudioCodec, CodecError, check_frame};

/// Largest Opus packet (RFC 6716 §3.2.1 bounds a frame's data well below this).
const MAX_PACKET: usize = 1500;

/// An Opus encoder and decoder pair for one call leg.
pub struct Opus {
    rate: u32,
    encoder: opus::Encoder,
    /// For 30 ms frames: constant mode and bandwidth, so 10 ms frames can be joined.
    encoder_30ms: Option<opus::Encoder>,
    decoder: opus::Decoder,
    repacketizer: opus::Repacketizer,
    scratch: Vec<i16>,
    packet: [u8; MAX_PACKET],
    parts: [[u8; MAX_PACKET]; 3],
}

impl Opus {
    /// Opus with PCM at `rate` Hz (8000, 12000, 16000, 24000 or 48000).
    pub fn new(rate: u32) -> Result<Self, CodecError> {
        let mut encoder = opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip).map_err(failed)?;
        encoder.set_inband_fec(true).map_err(failed)?;
        let decoder = opus::Decoder::new(rate, opus::Channels::Mono).map_err(failed)?;
        Ok(Self {
            rate,
            encoder,
            encoder_30ms: None,
            decoder,
            repacketizer: opus::Repacketizer::new().map_err(failed)?,
            scratch: vec![0; rate as usize * 120 / 1000],
            packet: [0; MAX_PACKET],
            parts: [[0; MAX_PACKET]; 3],
        })
    }

    /// Target bitrate in bits per second.
    pub fn set_bitrate(&mut self, bps: i32) -> Result<(), CodecError> {
        self.encoder.set_bitrate(opus::Bitrate::Bits(bps)).map_err(failed)
    }
}

/// A CELT-only encoder whose packets all share one TOC configuration at a given frame size.
fn constant_encoder(rate: u32) -> Result<opus::Encoder, CodecError> {
    let mut encoder = opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::LowDelay).map_err(failed)?;
    let bandwidth = match rate {
        8000 => opus::Bandwidth::Narrowband,
        12000 => opus::Bandwidth::Mediumband,
        16000 => opus::Bandwidth::Wideband,
        24000 => opus::Bandwidth::Superwideband,
        _ => opus::Bandwidth::Fullband,
    };
    encoder.set_bandwidth(bandwidth).map_err(failed)?;
    Ok(encoder)
}

fn failed(e: opus::Error) -> CodecError {
    CodecError::Failed { codec: "opus", message: e.to_string() }
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
            let n = self.encoder.encode(pcm, &mut self.packet).map_err(failed)?;
            out.extend_from_slice(&self.packet[..n]);
            return Ok(());
        }
        let encoder = match &mut self.encoder_30ms {
            Some(e) => e,
            slot => slot.insert(constant_encoder(self.rate)?),
        };
        let mut lens = [0usize; 3];
        for (i, chunk) in pcm.chunks(ten_ms).enumerate() {
            lens[i] = encoder.encode(chunk, &mut self.parts[i]).map_err(failed)?;
        }
        let parts = [&self.parts[0][..lens[0]], &self.parts[1][..lens[1]], &self.parts[2][..lens[2]]];
        let n = self.repacketizer.combine(&parts, &mut self.packet).map_err(failed)?;
        out.extend_from_slice(&self.packet[..n]);
        Ok(())
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() {
            return Err(CodecError::Failed { codec: "opus", message: "empty payload".into() });
        }
        let n = self.decoder.decode(payload, &mut self.scratch, false).map_err(failed)?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<bool, CodecError> {
        let want = samples.min(self.scratch.len());
        let n = self.decoder.decode(&[], &mut self.scratch[..want], false).map_err(failed)?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(true)
    }
}
