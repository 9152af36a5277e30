//! One call's statistics in one call (seed 001's `CallStatistics`) and quality monitoring
//! that pushes `MediaQuality` events when figures cross the thresholds.

use std::time::Duration;

use media::quality::{self, CodecImpairment, QualityAlertLevel, QualityInputs};

use super::{Call, CallState, lock};
use crate::peer::events::{MediaQualityEvent, PeerEvent};
use crate::peer::media::MediaSnapshot;

/// Everything measured about a call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallStatistics {
    pub call_id: super::CallId,
    /// Since answer (zero before).
    pub duration: Duration,
    pub state: CallState,
    pub codec: String,
    pub packets_sent: u64,
    pub packets_received: u64,
    pub packets_lost: i64,
    /// Percent of expected packets lost.
    pub loss_percent: f32,
    pub jitter_ms: f32,
    pub round_trip_ms: Option<f32>,
    /// Received audio bitrate (payload) since answer, bits per second.
    pub bitrate_bps: u32,
    /// E-model estimate from loss, jitter, delay and codec.
    pub mos: f32,
    pub alert_level: QualityAlertLevel,
}

/// When quality alerts fire (defaults from seed 001).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityThresholds {
    pub min_mos: f32,
    /// Percent.
    pub max_packet_loss: f32,
    pub max_jitter_ms: f32,
    pub check_interval: Duration,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds { min_mos: 3.0, max_packet_loss: 5.0, max_jitter_ms: 50.0, check_interval: Duration::from_secs(5) }
    }
}

fn loss_percent(m: &MediaSnapshot) -> f32 {
    let expected = m.packets_received as i64 + m.packets_lost.max(0);
    if expected == 0 { 0.0 } else { m.packets_lost.max(0) as f32 * 100.0 / expected as f32 }
}

impl Call {
    /// Duration, state, codec, packets, loss, jitter, RTT, bitrate and MOS, now.
    pub fn statistics(&self) -> CallStatistics {
        let m = self.0.media.snapshot();
        let duration = lock(&self.0.answered).map(|a| a.elapsed()).unwrap_or_default();
        let loss = loss_percent(&m);
        let estimate = quality::estimate(&QualityInputs {
            loss_percent: f64::from(loss),
            jitter_ms: m.jitter_ms,
            round_trip_ms: m.round_trip_ms.unwrap_or(0.0),
            frame_ms: f64::from(m.ptime_ms.max(10)),
            codec: CodecImpairment::for_codec(&m.codec),
        });
        let secs = duration.as_secs_f64();
        CallStatistics {
            call_id: self.0.id.clone(),
            duration,
            state: self.state(),
            codec: m.codec.clone(),
            packets_sent: m.packets_sent,
            packets_received: m.packets_received,
            packets_lost: m.packets_lost,
            loss_percent: loss,
            jitter_ms: m.jitter_ms as f32,
            round_trip_ms: m.round_trip_ms.map(|r| r as f32),
            bitrate_bps: if secs > 0.0 { (m.octets_received as f64 * 8.0 / secs) as u32 } else { 0 },
            mos: estimate.mos as f32,
            alert_level: estimate.level,
        }
    }

    /// Checks the call every `thresholds.check_interval` and pushes a `MediaQuality` event
    /// each time a figure is beyond its threshold (the event lists which). Replaces an
    /// earlier monitor of this call; stops with the call.
    pub fn monitor_quality(&self, thresholds: QualityThresholds) {
        let call = self.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(thresholds.check_interval.max(Duration::from_millis(100)));
            tick.tick().await;
            loop {
                tick.tick().await;
                if call.state().is_final() {
                    return;
                }
                let s = call.statistics();
                let mut breached = Vec::new();
                if s.mos < thresholds.min_mos {
                    breached.push("min_mos");
                }
                if s.loss_percent > thresholds.max_packet_loss {
                    breached.push("max_packet_loss");
                }
                if s.jitter_ms > thresholds.max_jitter_ms {
                    breached.push("max_jitter_ms");
                }
                if breached.is_empty() {
                    continue;
                }
                let event = MediaQualityEvent {
                    call_id: s.call_id,
                    mos_score: s.mos,
                    packet_loss: s.loss_percent,
                    jitter_ms: s.jitter_ms,
                    round_trip_ms: s.round_trip_ms.unwrap_or(0.0),
                    alert_level: s.alert_level,
                    breached,
                };
                let _ = call.0.events.push(PeerEvent::MediaQuality(event)).await;
            }
        });
        if let Some(old) = lock(&self.0.monitor).replace(task) {
            old.abort();
        }
    }
}
