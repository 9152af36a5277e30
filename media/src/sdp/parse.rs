//! Text → [`SessionDescription`], with webrtc-sdp doing the RFC 4566 grammar. Media lines
//! webrtc-sdp does not model (e.g. `m=image 0 udptl t38`) are kept as opaque sections so an
//! answer still has one `m=` line per offered one and can reject them with port 0; the
//! fields webrtc-sdp refuses but offer/answer never reads (`u= e= p= z= k= r=`) are skipped.

use std::net::IpAddr;

use webrtc_sdp::address::ExplicitlyTypedAddress;
use webrtc_sdp::attribute_type::SdpAttribute;
use webrtc_sdp::media_type::{SdpFormatList, SdpMedia};

use super::{Attribute, Codec, Direction, MAX_SDP_BYTES, MediaDescription, Origin, SessionDescription};

/// Why a body is not an SDP we can negotiate with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP body of {0} bytes is larger than {MAX_SDP_BYTES}")]
    TooLarge(usize),
    #[error("SDP body is not UTF-8")]
    NotText,
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("SDP has {0} media sections, more than {MAX_MEDIA}")]
    TooManyMedia(usize),
}

/// More media sections than any call needs is an attack, not an offer.
const MAX_MEDIA: usize = 16;

impl SessionDescription {
    /// Parses an SDP body. Hostile input gives an error, never a panic.
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        if body.len() > MAX_SDP_BYTES {
            return Err(SdpError::TooLarge(body.len()));
        }
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let raw = raw_media_lines(text);
        if raw.len() > MAX_MEDIA {
            return Err(SdpError::TooManyMedia(raw.len()));
        }
        let session =
            webrtc_sdp::parse_sdp(&without_unused_fields(text), false).map_err(|e| SdpError::Malformed(e.to_string()))?;
        let mut parsed = session.media.iter().map(media_section).peekable();
        let mut media = Vec::with_capacity(raw.len());
        for line in raw {
            match parsed.peek() {
                Some(m) if m.kind == line.kind && m.port == line.port && m.proto == line.proto => {
                    media.push(parsed.next().expect("peeked"));
                }
                _ => media.push(line),
            }
        }
        let (direction, attributes) = split_attributes(&session.attribute);
        let origin = &session.origin;
        Ok(SessionDescription {
            origin: Origin {
                username: origin.username.clone(),
                session_id: origin.session_id,
                session_version: origin.session_version,
                address: address_text(&origin.unicast_addr),
            },
            session_name: session.get_session_text().to_string(),
            connection: session.connection.as_ref().and_then(|c| ip_of(&c.address)),
            attributes,
            direction,
            media,
        })
    }
}

/// `text` without the RFC 4566 fields offer/answer never reads (`u= e= p= z= k= r=`):
/// legal in SIP, refused by webrtc-sdp.
fn without_unused_fields(text: &str) -> std::borrow::Cow<'_, str> {
    let unused = |l: &str| matches!(l.trim_start().get(..2), Some("u=" | "e=" | "p=" | "z=" | "k=" | "r="));
    if !text.lines().any(unused) {
        return text.into();
    }
    text.lines().filter(|l| !unused(l)).flat_map(|l| [l, "\r\n"]).collect::<String>().into()
}

/// The `m=` lines as written, for sections webrtc-sdp leaves out.
fn raw_media_lines(text: &str) -> Vec<MediaDescription> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("m="))
        .map(|m| {
            let mut fields = m.split_whitespace();
            let kind = fields.next().unwrap_or("").to_ascii_lowercase();
            let port = fields.next().and_then(|p| p.split('/').next()?.parse().ok()).unwrap_or(0);
            let proto = fields.next().unwrap_or("").to_ascii_uppercase();
            let formats = fields.map(str::to_string).collect();
            opaque(kind, port, proto, formats)
        })
        .collect()
}

fn opaque(kind: String, port: u16, proto: String, formats: Vec<String>) -> MediaDescription {
    MediaDescription {
        kind,
        port,
        proto,
        formats,
        connection: None,
        codecs: Vec::new(),
        direction: None,
        ptime: None,
        rtcp_port: None,
        attributes: Vec::new(),
    }
}

fn media_section(m: &SdpMedia) -> MediaDescription {
    let formats: Vec<String> = match m.get_formats() {
        SdpFormatList::Integers(v) => v.iter().map(u32::to_string).collect(),
        SdpFormatList::Strings(v) => v.clone(),
        SdpFormatList::Unknown(s) => s.split_whitespace().map(str::to_string).collect(),
    };
    let mut section = opaque(
        m.get_type().to_string().to_ascii_lowercase(),
        u16::try_from(m.get_port()).unwrap_or(0),
        m.get_proto().to_string().to_ascii_uppercase(),
        formats,
    );
    section.connection = m.get_connection().as_ref().and_then(|c| ip_of(&c.address));
    let (direction, attributes) = split_attributes(m.get_attributes());
    section.direction = direction;
    section.attributes = attributes;
    for attr in m.get_attributes() {
        match attr {
            SdpAttribute::Ptime(p) => section.ptime = u32::try_from(*p).ok(),
            SdpAttribute::Rtcp(r) => section.rtcp_port = Some(r.port),
            _ => {}
        }
    }
    section.codecs = codecs_of(m, &section.formats);
    section
}

/// Codecs in format-list order: rtpmap where given, RFC 3551 static types otherwise.
fn codecs_of(m: &SdpMedia, formats: &[String]) -> Vec<Codec> {
    let attrs = m.get_attributes();
    formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| {
            let mapped = attrs.iter().find_map(|a| match a {
                SdpAttribute::Rtpmap(r) if r.payload_type == pt => {
                    Some(Codec::new(pt, &r.codec_name, r.frequency, r.channels.and_then(|c| u16::try_from(c).ok()).unwrap_or(1)))
                }
                _ => None,
            });
            let mut codec = mapped.or_else(|| Codec::from_static(pt))?;
            codec.fmtp = attrs.iter().find_map(|a| match a {
                SdpAttribute::Fmtp(f) if f.payload_type == pt => Some(f.parameters.to_string()),
                _ => None,
            });
            Some(codec)
        })
        .collect()
}

/// Direction attributes apart; codec attributes (rtpmap, fmtp, ptime, rtcp) are modelled
/// elsewhere, everything else is kept as text.
fn split_attributes(attrs: &[SdpAttribute]) -> (Option<Direction>, Vec<Attribute>) {
    let mut direction = None;
    let mut rest = Vec::new();
    for attr in attrs {
        match attr {
            SdpAttribute::Sendrecv => direction = Some(Direction::SendRecv),
            SdpAttribute::Sendonly => direction = Some(Direction::SendOnly),
            SdpAttribute::Recvonly => direction = Some(Direction::RecvOnly),
            SdpAttribute::Inactive => direction = Some(Direction::Inactive),
            SdpAttribute::Rtpmap(_) | SdpAttribute::Fmtp(_) | SdpAttribute::Ptime(_) | SdpAttribute::Rtcp(_) => {}
            other => {
                let text = other.to_string();
                let (name, value) = match text.split_once(':') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (text, None),
                };
                rest.push(Attribute { name, value });
            }
        }
    }
    (direction, rest)
}

fn ip_of(addr: &ExplicitlyTypedAddress) -> Option<IpAddr> {
    match addr {
        ExplicitlyTypedAddress::Ip(ip) => Some(*ip),
        ExplicitlyTypedAddress::Fqdn { .. } => None,
    }
}

fn address_text(addr: &ExplicitlyTypedAddress) -> String {
    match addr {
        ExplicitlyTypedAddress::Ip(ip) => ip.to_string(),
        ExplicitlyTypedAddress::Fqdn { domain, .. } => domain.clone(),
    }
}
