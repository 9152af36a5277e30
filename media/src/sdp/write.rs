//! [`SessionDescription`] → SDP text, CRLF line ends, in RFC 4566 field order.

use std::fmt::{self, Write};
use std::net::IpAddr;

use super::{Attribute, MediaDescription, SessionDescription};

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        let origin_family = match o.address.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => "IP6",
            _ => "IP4",
        };
        write!(f, "v=0\r\no={} {} {} IN {origin_family} {}\r\n", o.username, o.session_id, o.session_version, o.address)?;
        write!(f, "{}", AfterOrigin(self))
    }
}

/// Everything of a description after its `o=` line.
pub(super) struct AfterOrigin<'a>(pub &'a SessionDescription);

impl fmt::Display for AfterOrigin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let name = if d.session_name.is_empty() { "-" } else { &d.session_name };
        write!(f, "s={name}\r\n")?;
        if let Some(ip) = d.connection {
            write_connection(f, ip)?;
        }
        f.write_str("t=0 0\r\n")?;
        if let Some(direction) = d.direction {
            write!(f, "a={direction}\r\n")?;
        }
        write_attributes(f, &d.attributes)?;
        for media in &d.media {
            write_media(f, media)?;
        }
        Ok(())
    }
}

fn write_connection(f: &mut fmt::Formatter<'_>, ip: IpAddr) -> fmt::Result {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    write!(f, "c=IN {family} {ip}\r\n")
}

fn write_attributes(f: &mut fmt::Formatter<'_>, attributes: &[Attribute]) -> fmt::Result {
    for a in attributes {
        match &a.value {
            Some(v) => write!(f, "a={}:{v}\r\n", a.name)?,
            None => write!(f, "a={}\r\n", a.name)?,
        }
    }
    Ok(())
}

fn write_media(f: &mut fmt::Formatter<'_>, m: &MediaDescription) -> fmt::Result {
    let mut line = format!("m={} {} {}", m.kind, m.port, m.proto);
    for format in &m.formats {
        let _ = write!(line, " {format}");
    }
    f.write_str(&line)?;
    f.write_str("\r\n")?;
    if let Some(ip) = m.connection {
        write_connection(f, ip)?;
    }
    for codec in &m.codecs {
        if codec.channels > 1 {
            write!(f, "a=rtpmap:{} {}/{}/{}\r\n", codec.payload_type, codec.name, codec.clock_rate, codec.channels)?;
        } else {
            write!(f, "a=rtpmap:{} {}/{}\r\n", codec.payload_type, codec.name, codec.clock_rate)?;
        }
        if let Some(fmtp) = codec.fmtp.as_deref().filter(|p| !p.is_empty()) {
            write!(f, "a=fmtp:{} {fmtp}\r\n", codec.payload_type)?;
        }
    }
    if let Some(ptime) = m.ptime {
        write!(f, "a=ptime:{ptime}\r\n")?;
    }
    if let Some(port) = m.rtcp_port {
        write!(f, "a=rtcp:{port}\r\n")?;
    }
    if let Some(direction) = m.direction {
        write!(f, "a={direction}\r\n")?;
    }
    write_attributes(f, &m.attributes)
}
