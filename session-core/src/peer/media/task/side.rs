//! The media task's side duties: the stream set up from each negotiation, RTCP reports out and in (loss, jitter, round trip), RFC 4733
//! digits sent on schedule, and the checks that media still flows.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use media::dtmf::DtmfSender;
use media::endpoint::Endpoint;
use media::rtp as rtp_stream;
use media::rtp::rtcp::{self, RtcpReport};
use media::sdp::Negotiated;

use super::{FLOW_GAP, PendingDigit, Stream, Task};
use crate::peer::error::PeerError;
use crate::peer::media::MediaNotice;

impl Task {
    /// Sets up (or updates) the stream for a new offer/answer outcome.
    pub(super) fn configure(&mut self, n: Negotiated) {
        // A new negotiation (a recovery re-INVITE among them) restarts the media timeout.
        self.started = Instant::now();
        self.timed_out = false;
        let same_codec = self.stream.as_ref().is_some_and(|s| s.ep.negotiated.codec.same_format(&n.codec));
        match (&mut self.stream, same_codec) {
            (Some(s), true) => {
                if s.ep.negotiated.remote_rtp != n.remote_rtp {
                    s.remote = n.remote_rtp;
                    s.latched = false;
                }
                s.ep.renegotiate(n);
            }
            _ => match Endpoint::new(n.clone(), 48000) {
                Ok(ep) => {
                    let rate = ep.rate;
                    let earlier = self.stream.as_ref().map_or((0, 0, 0), Stream::received);
                    self.stream = Some(Stream { ep, remote: n.remote_rtp, latched: false, earlier });
                    self.outgoing.clear();
                    let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
                    snap.codec = self.stream.as_ref().map(|s| s.ep.negotiated.codec.name.clone()).unwrap_or_default();
                    snap.sample_rate = rate;
                    snap.ptime_ms = self.stream.as_ref().map_or(20, |s| s.ep.negotiated.ptime.clamp(10, 60));
                }
                Err(e) => {
                    let _ = self.notices.send(MediaNotice::Error(format!("codec {}: {e}", n.codec.name)));
                }
            },
        }
    }

    pub(super) fn on_rtcp(&mut self, datagram: &[u8]) {
        let (Some(s), Ok(reports)) = (&mut self.stream, rtcp::parse(datagram)) else { return };
        let now = Instant::now();
        let arrival = rtcp::ntp_time(SystemTime::now());
        for report in reports {
            let blocks = match report {
                RtcpReport::Sender { ntp_time, blocks, .. } => {
                    s.ep.receiver.on_sender_report(ntp_time, now);
                    blocks
                }
                RtcpReport::Receiver { blocks, .. } => blocks,
                RtcpReport::Bye { .. } => continue,
            };
            for b in blocks.iter().filter(|b| b.ssrc == s.ep.sender.ssrc()) {
                let mut snap = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(rtt) = rtcp::round_trip(b, arrival) {
                    snap.round_trip_ms = Some(rtt.as_secs_f64() * 1000.0);
                }
            }
        }
    }

    /// Tells when our sending starts or stops: a stream toward a far end that wants our
    /// media (not on hold), and not muted.
    pub(super) fn check_sending(&mut self) {
        let sending =
            !self.muted && self.stream.as_ref().is_some_and(|s| s.ep.negotiated.direction.sends() && s.remote.is_some());
        if sending != self.sending {
            self.sending = sending;
            let _ = self.notices.send(MediaNotice::Sending(sending));
        }
    }

    pub(super) fn check_flow(&mut self, now: Instant) {
        let Some(s) = &self.stream else { return };
        if !s.ep.negotiated.direction.receives() {
            return;
        }
        let received = self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).last_received;
        let last = received.map_or(self.started, |r| r.max(self.started));
        let silent = now.duration_since(last);
        if self.receiving && silent >= FLOW_GAP {
            self.receiving = false;
            let _ = self.notices.send(MediaNotice::Flow { receiving: false });
        }
        if !self.timed_out && silent >= self.media_timeout {
            self.timed_out = true;
            let _ = self.notices.send(MediaNotice::Timeout);
        }
    }

    pub(super) async fn send_digits(&mut self, now: Instant) {
        let Some(s) = &mut self.stream else { return };
        let Some(te) = s.ep.negotiated.telephone_event else { return };
        if self.digit.is_none()
            && let Some((digit, duration, done)) = self.digits.pop_front()
        {
            match DtmfSender::new(te.clock_rate, Duration::from_millis(50)).packets(digit, duration) {
                Ok(packets) => {
                    let timestamp = s.ep.sender.timestamp();
                    s.ep.sender.mark_talk_spurt();
                    let packets = packets.into_iter().map(|p| (now + p.at, p)).collect();
                    self.digit = Some(PendingDigit { packets, timestamp, done });
                }
                Err(e) => {
                    let _ = done.send(Err(PeerError::Media(e.to_string())));
                }
            }
        }
        let Some(d) = &mut self.digit else { return };
        while let Some((at, p)) = d.packets.front().copied() {
            if at > now {
                return;
            }
            d.packets.pop_front();
            let packet = s.ep.sender.packet(te.send_payload_type, d.timestamp, Bytes::copy_from_slice(&p.payload), p.marker);
            if let Some(to) = s.remote {
                let _ = self.sockets.rtp.send_to(&rtp_stream::write_packet(&packet), to).await;
            }
        }
        // Every packet is out (audio frames were skipped meanwhile, so the clock moved on).
        if let Some(d) = self.digit.take() {
            let _ = d.done.send(Ok(()));
        }
    }

    pub(super) async fn report(&mut self) {
        let Some(s) = &mut self.stream else { return };
        let Some(to) = rtcp_target(s) else { return };
        let now = Instant::now();
        let block = s.ep.receiver.report_block(now);
        let fraction = block.as_ref().map_or(0.0, |b| f32::from(b.fraction_lost) / 256.0);
        let sent = self.sent_since_report.then(|| (s.ep.sender.stats(), rtcp::ntp_time(SystemTime::now())));
        self.sent_since_report = false;
        if let Ok(report) = rtcp::build_report(s.ep.sender.ssrc(), sent, block.into_iter().collect(), "callmesh-peer") {
            let _ = self.sockets.rtcp.send_to(&report, to).await;
        }
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).fraction_lost = fraction;
    }
}

pub(super) fn rtcp_target(s: &Stream) -> Option<SocketAddr> {
    s.ep.negotiated.remote_rtcp.or_else(|| s.remote.map(|r| SocketAddr::new(r.ip(), r.port().wrapping_add(1))))
}
