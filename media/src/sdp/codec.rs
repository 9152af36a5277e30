//! A codec as an SDP media section describes it (`a=rtpmap`, `a=fmtp`), with the static
//! payload types of RFC 3551 for streams that list them without an rtpmap.

/// One payload format of an RTP media section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`).
    pub name: String,
    pub clock_rate: u32,
    pub channels: u16,
    /// `a=fmtp` parameters, as text.
    pub fmtp: Option<String>,
}

impl Codec {
    pub fn new(payload_type: u8, name: &str, clock_rate: u32, channels: u16) -> Self {
        Self { payload_type, name: name.to_string(), clock_rate, channels, fmtp: None }
    }

    pub fn with_fmtp(mut self, fmtp: &str) -> Self {
        self.fmtp = Some(fmtp.to_string());
        self
    }

    /// G.711 µ-law on its static payload type.
    pub fn pcmu() -> Self {
        Self::new(0, "PCMU", 8000, 1)
    }

    /// G.711 A-law on its static payload type.
    pub fn pcma() -> Self {
        Self::new(8, "PCMA", 8000, 1)
    }

    /// Opus (RFC 7587: always `opus/48000/2` in SDP) on a dynamic payload type.
    pub fn opus(payload_type: u8) -> Self {
        Self::new(payload_type, "opus", 48000, 2).with_fmtp("useinbandfec=1")
    }

    /// RFC 4733 events at `clock_rate`, digits 0-15.
    pub fn telephone_event(payload_type: u8, clock_rate: u32) -> Self {
        Self::new(payload_type, "telephone-event", clock_rate, 1).with_fmtp("0-15")
    }

    /// The codec a static payload type stands for (RFC 3551 table 4), audio ones only.
    pub fn from_static(payload_type: u8) -> Option<Self> {
        let (name, rate, channels) = match payload_type {
            0 => ("PCMU", 8000, 1),
            3 => ("GSM", 8000, 1),
            4 => ("G723", 8000, 1),
            5 => ("DVI4", 8000, 1),
            6 => ("DVI4", 16000, 1),
            7 => ("LPC", 8000, 1),
            8 => ("PCMA", 8000, 1),
            9 => ("G722", 8000, 1),
            10 => ("L16", 44100, 2),
            11 => ("L16", 44100, 1),
            12 => ("QCELP", 8000, 1),
            13 => ("CN", 8000, 1),
            14 => ("MPA", 90000, 1),
            15 => ("G728", 8000, 1),
            16 => ("DVI4", 11025, 1),
            17 => ("DVI4", 22050, 1),
            18 => ("G729", 8000, 1),
            _ => return None,
        };
        Some(Self::new(payload_type, name, rate, channels))
    }

    /// Same encoding, clock rate and channel count: the payload type may differ per side.
    pub fn same_format(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name) && self.clock_rate == other.clock_rate && self.channels == other.channels
    }

    /// RFC 4733 events rather than audio.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// Comfort noise (RFC 3389): never chosen as the call's codec.
    pub fn is_comfort_noise(&self) -> bool {
        self.name.eq_ignore_ascii_case("CN")
    }

    /// Audio bandwidth of 7 kHz or more. G.722 says 8000 in SDP for historical reasons
    /// (RFC 3551 §4.5.2) but samples at 16 kHz.
    pub fn is_wideband(&self) -> bool {
        self.name.eq_ignore_ascii_case("G722") || self.clock_rate >= 16000
    }

    /// Whether `pt` is a dynamic payload type (RFC 3551: 96-127).
    pub fn is_dynamic(pt: u8) -> bool {
        (96..=127).contains(&pt)
    }
}
