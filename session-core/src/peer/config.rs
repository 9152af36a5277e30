//! A peer's configuration: where it listens, what it offers, who it is.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use media::sdp::{Codec, NegotiationOptions};
use sip::transaction::TimerConfig;

use super::error::PeerError;

/// How a [`SimplePeer`](super::SimplePeer) runs. Every field has a default that works on one
/// machine: SIP on a free UDP port of 127.0.0.1, RTP on 40000-49999, G.711 and Opus.
#[derive(Debug, Clone)]
pub struct Config {
    /// SIP port (UDP, and TCP on the same port); 0 picks a free one.
    pub sip_port: u16,
    /// Address the peer binds and writes into SIP and SDP.
    pub local_ip: IpAddr,
    /// RTP ports to use, inclusive; each call takes an even port and the next for RTCP.
    pub media_ports: (u16, u16),
    /// Audio codecs in order of preference.
    pub codecs: Vec<Codec>,
    /// How each call chooses its codec, which codecs it requires, extra SDP attributes.
    pub negotiation: NegotiationOptions,
    /// User name and password for digest authentication (registrations and calls).
    pub credentials: Option<(String, String)>,
    /// Shown in `From` of our requests.
    pub display_name: Option<String>,
    /// `Expires` asked for by `register`.
    pub register_expires: u32,
    /// How long an outgoing call may ring before it is cancelled.
    pub answer_timeout: Duration,
    /// How long an incoming call waits for someone to accept it (policy `RequireManual`,
    /// a handler's `Defer`) before it is refused with `480`.
    pub incoming_timeout: Duration,
    /// Where `TimeoutAction::SendToVoicemail` redirects a call (`302`); without it, `480`.
    pub voicemail_uri: Option<String>,
    /// After this long without RTP from the far end, the media error policy applies.
    pub media_timeout: Duration,
    /// SIP timers (T1 500 ms by default: a request without an answer gives up after 64·T1).
    /// A smaller T1 suits links known to be fast; a larger one, slow ones.
    pub sip_timers: TimerConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sip_port: 0,
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            media_ports: (40000, 49999),
            codecs: vec![Codec::pcmu(), Codec::pcma(), Codec::opus(111)],
            negotiation: NegotiationOptions::default(),
            credentials: None,
            display_name: None,
            register_expires: 3600,
            answer_timeout: Duration::from_secs(60),
            incoming_timeout: Duration::from_secs(60),
            voicemail_uri: None,
            media_timeout: Duration::from_secs(30),
            sip_timers: TimerConfig::default(),
        }
    }
}

impl Config {
    /// Checks the values that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), PeerError> {
        let (lo, hi) = self.media_ports;
        if lo == 0 || hi < lo.saturating_add(1) {
            return Err(PeerError::Config(format!("media_ports {lo}-{hi}: need at least two ports, none of them 0")));
        }
        if self.codecs.is_empty() {
            return Err(PeerError::Config("codecs: at least one audio codec is needed".into()));
        }
        if let Some(bad) = self.codecs.iter().find(|c| media::codec::for_sdp(c, 48000).is_err()) {
            return Err(PeerError::Config(format!("codecs: {} has no encoder here (PCMU, PCMA and opus do)", bad.name)));
        }
        if self.register_expires == 0 {
            return Err(PeerError::Config("register_expires: 0 would unregister at once".into()));
        }
        Ok(())
    }
}
