//! Media commands' values on the bus: a room seat's negotiated stream (`MediaStream`, from
//! `media::sdp::Negotiated` and back, with the far end's signalling address for safe
//! latching), a relay leg's far end (`MediaConnect`), a leg's counters (`LegStats`).

use std::net::{IpAddr, SocketAddr};

use cluster::contracts::{LegStats, MediaConnect, MediaStream, RtpCodec};

use crate::client::FarMedia;
use crate::counters::LegSnapshot;
use media::sdp::{Codec, Direction, Negotiated, TelephoneEvent};

/// The wire form of `n`, whose far end signals from `signal`.
pub fn to_wire(n: &Negotiated, signal: Option<IpAddr>) -> MediaStream {
    let te = n.telephone_event;
    MediaStream {
        remote_rtp_addr: n.remote_rtp.map(|a| a.to_string()).unwrap_or_default(),
        signal_ip: signal.map(|ip| ip.to_string()).unwrap_or_default(),
        codec: n.codec.name.clone(),
        clock_rate: n.codec.clock_rate,
        channels: u32::from(n.codec.channels),
        send_payload_type: u32::from(n.codec.payload_type),
        recv_payload_type: u32::from(n.recv_payload_type),
        event_send_payload_type: te.map_or(0, |t| u32::from(t.send_payload_type)),
        event_recv_payload_type: te.map_or(0, |t| u32::from(t.recv_payload_type)),
        event_clock_rate: te.map_or(0, |t| t.clock_rate),
        ptime: n.ptime,
        sends: n.direction.sends(),
        receives: n.direction.receives(),
        fmtp: n.codec.fmtp.clone().unwrap_or_default(),
    }
}

fn payload_type(pt: u32) -> Result<u8, String> {
    u8::try_from(pt).ok().filter(|pt| *pt < 128).ok_or_else(|| format!("bad payload type {pt}"))
}

/// The stream `w` describes, and its far end's signalling address.
pub fn from_wire(w: &MediaStream) -> Result<(Negotiated, Option<IpAddr>), String> {
    let remote_rtp = match w.remote_rtp_addr.as_str() {
        "" => None,
        a => Some(a.parse::<SocketAddr>().map_err(|_| format!("bad RTP address {a:?}"))?),
    };
    let signal = match w.signal_ip.as_str() {
        "" => None,
        ip => Some(ip.parse::<IpAddr>().map_err(|_| format!("bad signalling address {ip:?}"))?),
    };
    let channels = u16::try_from(w.channels.max(1)).map_err(|_| "bad channel count".to_owned())?;
    let mut codec = Codec::new(payload_type(w.send_payload_type)?, &w.codec, w.clock_rate, channels);
    codec.fmtp = (!w.fmtp.is_empty()).then(|| w.fmtp.clone());
    let telephone_event = (w.event_send_payload_type != 0)
        .then(|| -> Result<TelephoneEvent, String> {
            Ok(TelephoneEvent {
                send_payload_type: payload_type(w.event_send_payload_type)?,
                recv_payload_type: payload_type(w.event_recv_payload_type)?,
                clock_rate: w.event_clock_rate.max(8000),
            })
        })
        .transpose()?;
    let direction = match (w.sends, w.receives) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    };
    let negotiated = Negotiated {
        remote_rtcp: remote_rtp.map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1))),
        remote_rtp,
        codec,
        recv_payload_type: payload_type(w.recv_payload_type)?,
        telephone_event,
        direction,
        ptime: w.ptime.clamp(10, 60),
    };
    Ok((negotiated, signal))
}

/// A payload type from the wire (0: none; events never use a static type).
pub(crate) fn events_pt(pt: u32) -> Option<u8> {
    u8::try_from(pt).ok().filter(|pt| (96..128).contains(pt))
}

/// A far end from the wire.
pub(crate) fn far_end(c: &MediaConnect) -> Result<FarMedia, String> {
    let rtp = c.remote_rtp_addr.parse::<SocketAddr>().map_err(|_| format!("bad RTP address {:?}", c.remote_rtp_addr))?;
    let signal = match c.signal_ip.as_str() {
        "" => None,
        ip => Some(ip.parse::<IpAddr>().map_err(|_| format!("bad signalling address {ip:?}"))?),
    };
    let clock_rate = if c.clock_rate == 0 { 8000 } else { c.clock_rate.clamp(1000, 192_000) };
    let codecs = c.codecs.iter().take(MAX_CODECS).map(codec_from_wire).collect::<Result<_, _>>()?;
    Ok(FarMedia { rtp, events: events_pt(c.telephone_event_pt), signal, clock_rate, codecs })
}

/// More codecs than any real description lists are ignored.
const MAX_CODECS: usize = 32;

pub(crate) fn codec_to_wire(c: &Codec) -> RtpCodec {
    RtpCodec {
        payload_type: c.payload_type.into(),
        name: c.name.clone(),
        clock_rate: c.clock_rate,
        channels: c.channels.into(),
        fmtp: c.fmtp.clone().unwrap_or_default(),
    }
}

fn codec_from_wire(c: &RtpCodec) -> Result<Codec, String> {
    let pt =
        u8::try_from(c.payload_type).ok().filter(|pt| *pt < 128).ok_or_else(|| format!("bad payload type {}", c.payload_type))?;
    if c.name.is_empty() || c.name.len() > 32 || c.clock_rate == 0 {
        return Err(format!("bad codec {:?}/{}", c.name, c.clock_rate));
    }
    let channels = u16::try_from(c.channels.max(1)).map_err(|_| format!("bad channel count {}", c.channels))?;
    let codec = Codec::new(pt, &c.name, c.clock_rate, channels);
    Ok(if c.fmtp.is_empty() { codec } else { codec.with_fmtp(&c.fmtp) })
}

pub(crate) fn leg_stats(leg: usize, c: &LegSnapshot) -> LegStats {
    LegStats {
        leg: leg as u32,
        packets_received: c.packets_received,
        bytes_received: c.bytes_received,
        packets_sent: c.packets_sent,
        bytes_sent: c.bytes_sent,
        packets_lost: c.packets_lost,
        rtcp_packets: c.rtcp_packets,
        jitter_ms: c.jitter_ms,
        packets_refused: c.refused_packets,
        mos: c.mos,
        worst_mos: c.worst_mos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_crosses_the_wire_unchanged() {
        let n = Negotiated {
            remote_rtp: Some("192.0.2.5:4000".parse().unwrap()),
            remote_rtcp: Some("192.0.2.5:4001".parse().unwrap()),
            codec: Codec::opus(111),
            recv_payload_type: 96,
            telephone_event: Some(TelephoneEvent { send_payload_type: 101, recv_payload_type: 100, clock_rate: 48_000 }),
            direction: Direction::SendOnly,
            ptime: 20,
        };
        let signal = Some("203.0.113.1".parse().unwrap());
        assert_eq!(from_wire(&to_wire(&n, signal)), Ok((n.clone(), signal)));
        let bad = MediaStream { send_payload_type: 300, ..to_wire(&Negotiated { telephone_event: None, ..n }, None) };
        assert_eq!(from_wire(&bad), Err("bad payload type 300".into()));
    }
}
