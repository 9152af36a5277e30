//! The media core of Callmesh, shared by media nodes and the SDK: SDP offer/answer
//! ([`sdp`]), RTP/RTCP stream state ([`rtp`]), codecs and rate conversion ([`codec`]),
//! RFC 4733 DTMF ([`dtmf`]) and DTMF tones in audio ([`inband`]), the adaptive jitter buffer ([`jitter`]), one terminated stream
//! built from them ([`endpoint`]), mixing and recording ([`audio`]) and call quality
//! estimates ([`quality`]).
//!
//! Everything stateful here is sans-IO: it takes packets and the current time and returns
//! what to send or play, so it is tested on a virtual clock and driven by whatever runtime
//! owns the sockets.

pub mod audio;
pub mod codec;
pub mod dtmf;
pub mod endpoint;
pub mod inband;
pub mod jitter;
pub mod quality;
pub mod rtp;
pub mod sdp;
