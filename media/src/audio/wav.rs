//! Reading WAV files to play (prompts, music on hold): any rate, mono or stereo, 16/24/32-bit
//! integer or float, brought to mono 16-bit PCM at the file's own rate.

use std::path::Path;

/// Reads `path` as mono PCM (channels averaged) and its sample rate.
pub fn read_mono(path: impl AsRef<Path>) -> Result<(Vec<i16>, u32), String> {
    let path = path.as_ref();
    let bad = |e: hound::Error| format!("reading {}: {e}", path.display());
    let mut reader = hound::WavReader::open(path).map_err(bad)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels.max(1));
    let interleaved: Vec<i32> = match spec.sample_format {
        hound::SampleFormat::Int => {
            let shift = i32::from(spec.bits_per_sample.saturating_sub(16));
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| if shift >= 0 { v >> shift } else { v << -shift }))
                .collect::<Result<_, _>>()
        }
        hound::SampleFormat::Float => reader.samples::<f32>().map(|s| s.map(|v| (v * 32767.0) as i32)).collect::<Result<_, _>>(),
    }
    .map_err(bad)?;
    let samples =
        interleaved.chunks(channels).map(|c| (c.iter().sum::<i32>() / c.len() as i32).clamp(-32768, 32767) as i16).collect();
    Ok((samples, spec.sample_rate))
}
