//! Text → [`SessionDescription`]: the RFC 4566 grammar, strictly, for what offer/answer
//! reads. Required: `v=0` first, an `o=` line with numeric session id and version, `s=`,
//! `t=`, and a connection address for every media section (its own or the session's).
//! Fields offer/answer never reads (`i= u= e= p= b= z= k= r=`) are skipped; an unknown type
//! letter, a bad number, a bad address or a payload type over 127 is an error. Media
//! sections of any protocol are kept (an answer needs one `m=` line per offered one). A
//! call parses two descriptions, so this is ours and quick: no allocation beyond the model.

use std::net::IpAddr;

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

fn malformed(what: impl Into<String>) -> SdpError {
    SdpError::Malformed(what.into())
}

/// A media section being read, with the attributes that become codecs.
struct Section {
    media: MediaDescription,
    rtpmaps: Vec<(u8, Codec)>,
    fmtps: Vec<(u8, String)>,
    has_connection: bool,
}

impl SessionDescription {
    /// Parses an SDP body. Hostile input gives an error, never a panic.
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        if body.len() > MAX_SDP_BYTES {
            return Err(SdpError::TooLarge(body.len()));
        }
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let media_count = text.lines().filter(|l| l.starts_with("m=")).count();
        if media_count > MAX_MEDIA {
            return Err(SdpError::TooManyMedia(media_count));
        }
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).filter(|l| !l.trim().is_empty());
        if lines.next().map(str::trim) != Some("v=0") {
            return Err(malformed("the first line is not v=0"));
        }
        let mut origin = None;
        let mut session_name = None;
        let mut timing = false;
        let mut connection = None;
        let mut session_has_connection = false;
        let mut attributes = Vec::new();
        let mut direction = None;
        let mut sections: Vec<Section> = Vec::with_capacity(media_count);
        for line in lines {
            let (kind, value) = match line.as_bytes() {
                [k, b'=', ..] => (*k, &line[2..]),
                _ => return Err(malformed(format!("not a type=value line: {line:.40}"))),
            };
            let in_media = !sections.is_empty();
            match kind {
                b'o' if origin.is_none() && !in_media => origin = Some(parse_origin(value)?),
                b's' if session_name.is_none() && !in_media => session_name = Some(value.to_owned()),
                b't' if !in_media => {
                    let mut times = value.split_whitespace();
                    let ok = matches!((times.next(), times.next(), times.next()), (Some(a), Some(b), None)
                        if a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok());
                    if !ok {
                        return Err(malformed(format!("bad t= line: {value:.40}")));
                    }
                    timing = true;
                }
                b'c' => {
                    let address = parse_connection(value)?;
                    match sections.last_mut() {
                        Some(s) => {
                            s.media.connection = address;
                            s.has_connection = true;
                        }
                        None => {
                            connection = address;
                            session_has_connection = true;
                        }
                    }
                }
                b'm' => sections.push(parse_media(value)?),
                b'a' => {
                    let (name, value) = match value.split_once(':') {
                        Some((n, v)) => (n, Some(v)),
                        None => (value, None),
                    };
                    match sections.last_mut() {
                        Some(s) => media_attribute(s, name, value)?,
                        None => match parse_direction(name) {
                            Some(d) => direction = Some(d),
                            None => attributes.push(Attribute::new(name, value.map(str::to_owned))),
                        },
                    }
                }
                // What offer/answer never reads: information, URI, e-mail, phone, bandwidth,
                // time zones, keys, repeat times.
                b'i' | b'u' | b'e' | b'p' | b'b' | b'z' | b'k' | b'r' => {}
                _ => return Err(malformed(format!("unexpected line {line:.40}"))),
            }
        }
        let origin = origin.ok_or_else(|| malformed("no o= line"))?;
        let session_name = session_name.ok_or_else(|| malformed("no s= line"))?;
        if !timing {
            return Err(malformed("no t= line"));
        }
        if !session_has_connection && sections.iter().any(|s| !s.has_connection) {
            return Err(malformed("no c= line for a media section"));
        }
        let media = sections.into_iter().map(finish_section).collect();
        Ok(SessionDescription { origin, session_name, connection, attributes, direction, media })
    }
}

/// `o=<username> <sess-id> <sess-version> IN IP4|IP6 <address>`.
fn parse_origin(value: &str) -> Result<Origin, SdpError> {
    let f: Vec<&str> = value.split_whitespace().collect();
    let [username, id, version, net, family, address] = f[..] else {
        return Err(malformed(format!("bad o= line: {value:.40}")));
    };
    let number = |s: &str| s.parse::<u64>().map_err(|_| malformed(format!("bad number {s:.20} in o=")));
    if net != "IN" || !matches!(family, "IP4" | "IP6") {
        return Err(malformed(format!("bad o= address type: {net} {family}")));
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id: number(id)?,
        session_version: number(version)?,
        address: address.to_owned(),
    })
}

/// `c=IN IP4|IP6 <address>[/ttl[/count]]`: the IP, or `None` for a host name.
fn parse_connection(value: &str) -> Result<Option<IpAddr>, SdpError> {
    let mut f = value.split_whitespace();
    let (Some("IN"), Some(family), Some(address), None) = (f.next(), f.next(), f.next(), f.next()) else {
        return Err(malformed(format!("bad c= line: {value:.40}")));
    };
    let address = address.split('/').next().unwrap_or_default();
    match (family, address.parse::<IpAddr>()) {
        ("IP4", Ok(ip @ IpAddr::V4(_))) | ("IP6", Ok(ip @ IpAddr::V6(_))) => Ok(Some(ip)),
        // A host name (RFC 4566 allows an FQDN): nothing to send to without resolving it.
        ("IP4" | "IP6", Err(_)) if is_host_name(address) => Ok(None),
        _ => Err(malformed(format!("bad c= address: {value:.40}"))),
    }
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
}

/// `m=<media> <port>[/<count>] <proto> <fmt> ...`.
fn parse_media(value: &str) -> Result<Section, SdpError> {
    let mut f = value.split_whitespace();
    let (Some(kind), Some(port), Some(proto)) = (f.next(), f.next(), f.next()) else {
        return Err(malformed(format!("bad m= line: {value:.40}")));
    };
    let port = port
        .split('/')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| malformed(format!("bad m= port: {port:.20}")))?;
    let proto = proto.to_ascii_uppercase();
    let formats: Vec<String> = f.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(malformed(format!("m= line without formats: {value:.40}")));
    }
    if proto.contains("RTP/") && formats.iter().any(|f| f.parse::<u8>().map_or(true, |pt| pt > 127)) {
        return Err(malformed(format!("bad RTP payload type in m= line: {value:.40}")));
    }
    let media = MediaDescription {
        kind: kind.to_ascii_lowercase(),
        port,
        proto,
        formats,
        connection: None,
        codecs: Vec::new(),
        direction: None,
        ptime: None,
        rtcp_port: None,
        attributes: Vec::new(),
    };
    Ok(Section { media, rtpmaps: Vec::new(), fmtps: Vec::new(), has_connection: false })
}

fn parse_direction(name: &str) -> Option<Direction> {
    match name {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

fn payload_type(s: &str) -> Result<u8, SdpError> {
    s.parse::<u8>().ok().filter(|pt| *pt <= 127).ok_or_else(|| malformed(format!("bad payload type {s:.20}")))
}

/// A media-level attribute: direction, the codec attributes, or kept as text.
fn media_attribute(s: &mut Section, name: &str, value: Option<&str>) -> Result<(), SdpError> {
    if let Some(d) = parse_direction(name) {
        s.media.direction = Some(d);
        return Ok(());
    }
    let bad = || malformed(format!("bad a={name}:{:.40}", value.unwrap_or_default()));
    match (name, value) {
        ("rtpmap", Some(v)) => {
            let (pt, encoding) = v.trim().split_once(' ').ok_or_else(bad)?;
            let pt = payload_type(pt)?;
            let mut parts = encoding.trim().split('/');
            let codec_name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
            let rate = parts.next().and_then(|r| r.parse::<u32>().ok()).ok_or_else(bad)?;
            let channels = match parts.next() {
                Some(c) => c.parse::<u16>().map_err(|_| bad())?,
                None => 1,
            };
            s.rtpmaps.push((pt, Codec::new(pt, codec_name, rate, channels)));
        }
        ("fmtp", Some(v)) => {
            let (pt, params) = v.trim().split_once(' ').ok_or_else(bad)?;
            s.fmtps.push((payload_type(pt)?, params.trim().to_owned()));
        }
        ("ptime", Some(v)) => s.media.ptime = Some(v.trim().parse::<u32>().map_err(|_| bad())?),
        ("rtcp", Some(v)) => {
            let port = v.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()).ok_or_else(bad)?;
            s.media.rtcp_port = Some(port);
        }
        _ => s.media.attributes.push(Attribute::new(name, value.map(str::to_owned))),
    }
    Ok(())
}

/// Codecs in format-list order: rtpmap where given, RFC 3551 static types otherwise.
fn finish_section(s: Section) -> MediaDescription {
    let Section { mut media, rtpmaps, fmtps, .. } = s;
    media.codecs = media
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| {
            let mapped = rtpmaps.iter().find(|(p, _)| *p == pt).map(|(_, c)| c.clone());
            let mut codec = mapped.or_else(|| Codec::from_static(pt))?;
            codec.fmtp = fmtps.iter().find(|(p, _)| *p == pt).map(|(_, f)| f.clone());
            Some(codec)
        })
        .collect();
    media
}
