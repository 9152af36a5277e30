//! RTCP reports (RFC 3550 §6.4): a compound packet of SR (when we sent since the last
//! report) or RR, plus the SDES CNAME every compound packet needs; reading the reports the
//! far end sends; and the round-trip time from LSR/DLSR (§6.4.1).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtcp::goodbye::Goodbye;
use rtcp::receiver_report::ReceiverReport;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem};

use super::SenderStats;

/// Seconds from 1900 (NTP era 0) to 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A wall-clock time as a 64-bit NTP timestamp (32.32 fixed point).
pub fn ntp_time(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// What a received RTCP compound packet told us.
#[derive(Debug, Clone, PartialEq)]
pub enum RtcpReport {
    Sender { ssrc: u32, ntp_time: u64, rtp_time: u32, packets: u32, octets: u32, blocks: Vec<ReceptionReport> },
    Receiver { ssrc: u32, blocks: Vec<ReceptionReport> },
    Bye { sources: Vec<u32> },
}

/// Why an RTCP datagram was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed RTCP: {0}")]
pub struct RtcpError(String);

/// Our report: SR when `sent` is given (we sent media since the last one), else RR; the
/// reception blocks; then SDES with `cname`.
pub fn build_report(
    ssrc: u32,
    sent: Option<(SenderStats, u64)>,
    blocks: Vec<ReceptionReport>,
    cname: &str,
) -> Result<Bytes, RtcpError> {
    let sdes = SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: ssrc,
            items: vec![SourceDescriptionItem { sdes_type: SdesType::SdesCname, text: Bytes::copy_from_slice(cname.as_bytes()) }],
        }],
    };
    let report: Box<dyn rtcp::packet::Packet + Send + Sync> = match sent {
        Some((stats, ntp_time)) => Box::new(SenderReport {
            ssrc,
            ntp_time,
            rtp_time: stats.last_timestamp,
            packet_count: stats.packets,
            octet_count: stats.octets,
            reports: blocks,
            profile_extensions: Bytes::new(),
        }),
        None => Box::new(ReceiverReport { ssrc, reports: blocks, profile_extensions: Bytes::new() }),
    };
    rtcp::packet::marshal(&[report, Box::new(sdes)]).map_err(|e| RtcpError(e.to_string()))
}

/// A BYE for `ssrc` (RFC 3550 §6.6), sent when the stream ends.
pub fn build_bye(ssrc: u32) -> Result<Bytes, RtcpError> {
    rtcp::packet::marshal(&[Box::new(Goodbye { sources: vec![ssrc], reason: Bytes::new() })])
        .map_err(|e| RtcpError(e.to_string()))
}

/// The reports in an RTCP compound packet; other packet types are skipped.
pub fn parse(datagram: &[u8]) -> Result<Vec<RtcpReport>, RtcpError> {
    if datagram.len() < 4 || datagram[0] >> 6 != 2 {
        return Err(RtcpError("not RTCP version 2".into()));
    }
    let mut buf = datagram;
    let packets = rtcp::packet::unmarshal(&mut buf).map_err(|e| RtcpError(e.to_string()))?;
    Ok(packets
        .iter()
        .filter_map(|p| {
            let any = p.as_any();
            if let Some(sr) = any.downcast_ref::<SenderReport>() {
                Some(RtcpReport::Sender {
                    ssrc: sr.ssrc,
                    ntp_time: sr.ntp_time,
                    rtp_time: sr.rtp_time,
                    packets: sr.packet_count,
                    octets: sr.octet_count,
                    blocks: sr.reports.clone(),
                })
            } else if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                Some(RtcpReport::Receiver { ssrc: rr.ssrc, blocks: rr.reports.clone() })
            } else {
                any.downcast_ref::<Goodbye>().map(|bye| RtcpReport::Bye { sources: bye.sources.clone() })
            }
        })
        .collect())
}

/// Round-trip time from a reception block about our stream that arrived at NTP time
/// `arrival` (RFC 3550 §6.4.1: A − LSR − DLSR). `None` before the far end saw a sender
/// report of ours, or when clocks make the figure negative.
pub fn round_trip(block: &ReceptionReport, arrival: u64) -> Option<Duration> {
    if block.last_sender_report == 0 {
        return None;
    }
    let a = (arrival >> 16) as u32;
    let rtt = a.wrapping_sub(block.last_sender_report).wrapping_sub(block.delay);
    if rtt > u32::MAX / 2 {
        return None;
    }
    Some(Duration::from_nanos((u64::from(rtt) * 1_000_000_000) >> 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ssrc: u32) -> ReceptionReport {
        ReceptionReport {
            ssrc,
            fraction_lost: 25,
            total_lost: 9,
            last_sequence_number: 65636,
            jitter: 80,
            last_sender_report: 0x5678_9ABC,
            delay: 32768,
        }
    }

    #[test]
    fn sender_report_round_trips_with_its_blocks() {
        let stats = SenderStats { packets: 50, octets: 8000, last_timestamp: 123_456 };
        let wire = build_report(7, Some((stats, 0x1122_3344_5566_7788)), vec![block(9)], "alice@callmesh").unwrap();
        let reports = parse(&wire).unwrap();
        assert_eq!(
            reports,
            vec![RtcpReport::Sender {
                ssrc: 7,
                ntp_time: 0x1122_3344_5566_7788,
                rtp_time: 123_456,
                packets: 50,
                octets: 8000,
                blocks: vec![block(9)]
            }]
        );
    }

    #[test]
    fn receiver_report_and_bye_round_trip() {
        let wire = build_report(7, None, vec![block(9)], "bob").unwrap();
        assert_eq!(parse(&wire).unwrap(), vec![RtcpReport::Receiver { ssrc: 7, blocks: vec![block(9)] }]);
        assert_eq!(parse(&build_bye(7).unwrap()).unwrap(), vec![RtcpReport::Bye { sources: vec![7] }]);
    }

    #[test]
    fn round_trip_time_is_arrival_minus_lsr_minus_dlsr() {
        // The far end got our SR at LSR, held it 0.5 s, and its RR reaches us 0.6 s after
        // our SR left: 100 ms round trip.
        let sent = 0x1122_3344_0000_0000u64;
        let mut b = block(7);
        b.last_sender_report = (sent >> 16) as u32;
        b.delay = 32768;
        let arrival = sent + (((6u64 << 32) / 10) & !0xFFFF);
        let rtt = round_trip(&b, arrival).unwrap();
        assert!((rtt.as_secs_f64() - 0.1).abs() < 0.001, "rtt {rtt:?}");
        b.last_sender_report = 0;
        assert_eq!(round_trip(&b, arrival), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [&[][..], &[0x80][..], &[0x80, 201, 0xFF, 0xFF, 1, 2][..], &[0x00; 40][..]] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
        assert!(ntp_time(SystemTime::now()) >> 32 > NTP_UNIX_OFFSET);
    }
}
