//! PCM audio work: the conference mixer, the WAV call recorder, WAV files to play, and tones
//! (generation and Goertzel detection).

pub mod mixer;
pub mod recorder;
pub mod tone;
pub mod wav;

pub use mixer::{Mixer, MixerError, ParticipantId};
pub use recorder::{Recorder, RecorderError, RecordingLayout, RecordingSummary};
