//! Audio codecs behind one trait: G.711 µ-law/A-law (ours, table driven) and Opus (libopus
//! through the `opus` crate), plus the rate conversion between 8, 16 and 48 kHz and the frame
//! sizes calls use.

pub mod g711;
mod opus_codec;
pub mod resample;

pub use opus_codec::Opus;
pub use resample::Resampler;

use crate::sdp::Codec;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("{codec}: {message}")]
    Failed { codec: &'static str, message: String },
    #[error("codec {0} is not supported")]
    Unsupported(String),
    #[error("frame of {samples} samples is not 10, 20 or 30 ms at {rate} Hz")]
    BadFrame { samples: usize, rate: u32 },
}

/// Frame durations calls use.
pub const FRAME_MS: [u32; 3] = [10, 20, 30];

/// Samples in one mono frame of `ms` milliseconds at `rate` Hz.
pub fn frame_samples(rate: u32, ms: u32) -> usize {
    (rate as usize * ms as usize) / 1000
}

/// Checks that `samples` is a 10, 20 or 30 ms frame at `rate`.
pub fn check_frame(samples: usize, rate: u32) -> Result<(), CodecError> {
    if FRAME_MS.iter().any(|ms| frame_samples(rate, *ms) == samples) {
        Ok(())
    } else {
        Err(CodecError::BadFrame { samples, rate })
    }
}

/// An audio codec: mono 16-bit PCM frames at [`AudioCodec::sample_rate`] in and out.
pub trait AudioCodec: Send {
    /// Encoding name as in SDP.
    fn name(&self) -> &'static str;
    /// Rate of the PCM this codec takes and gives.
    fn sample_rate(&self) -> u32;
    /// Appends the payload for one frame to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Appends the PCM of one payload to `out`.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;
    /// Appends `samples` of concealment for a lost frame, if the codec has its own; `false`
    /// leaves concealment to the caller (see `jitter::Concealer`).
    fn conceal(&mut self, _samples: usize, _out: &mut Vec<i16>) -> Result<bool, CodecError> {
        Ok(false)
    }
}

/// A G.711 codec: one octet per 8 kHz sample through the law's tables.
macro_rules! g711_codec {
    ($(#[$doc:meta])* $name:ident, $sdp:literal, $encode:path, $decode:path) => {
        $(#[$doc])*
        #[derive(Debug, Default, Clone, Copy)]
        pub struct $name;

        impl AudioCodec for $name {
            fn name(&self) -> &'static str {
                $sdp
            }
            fn sample_rate(&self) -> u32 {
                8000
            }
            fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
                out.extend(pcm.iter().map(|&s| $encode(s)));
                Ok(())
            }
            fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
                out.extend(payload.iter().map(|&c| $decode(c)));
                Ok(())
            }
        }
    };
}

g711_codec!(
    /// G.711 µ-law (PCMU).
    Pcmu, "PCMU", g711::ulaw_from_linear, g711::ulaw_to_linear
);
g711_codec!(
    /// G.711 A-law (PCMA).
    Pcma, "PCMA", g711::alaw_from_linear, g711::alaw_to_linear
);

/// The codec for a negotiated SDP codec. Opus runs at `opus_rate` (8, 16 or 48 kHz PCM).
pub fn for_sdp(codec: &Codec, opus_rate: u32) -> Result<Box<dyn AudioCodec>, CodecError> {
    if codec.name.eq_ignore_ascii_case("PCMU") {
        Ok(Box::new(Pcmu))
    } else if codec.name.eq_ignore_ascii_case("PCMA") {
        Ok(Box::new(Pcma))
    } else if codec.name.eq_ignore_ascii_case("opus") {
        Ok(Box::new(Opus::new(opus_rate)?))
    } else {
        Err(CodecError::Unsupported(codec.name.clone()))
    }
}
