//! Call quality: a simplified ITU-T G.107 E-model turning loss, jitter and round-trip time
//! into an R-factor and a MOS, and the alert levels of the SDK (seed 001).
//!
//! Simplifications (documented, not hidden): the delay impairment uses the Cole–Rosenbluth
//! fit of G.107's Id; the one-way delay is RTT/2 plus a jitter buffer of twice the jitter
//! plus one frame and the codec's look-ahead; loss is taken as random (BurstR = 1); other
//! factors keep their G.107 defaults (Ro − Is = 93.2).

use std::fmt;

/// R with every impairment at its G.107 default and no delay or loss.
const R_DEFAULT: f64 = 93.2;

/// Equipment impairment of a codec (ITU-T G.113 Appendix I).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Ie: impairment with no loss.
    pub ie: f64,
    /// Bpl: robustness to packet loss.
    pub bpl: f64,
    /// Algorithmic look-ahead, ms.
    pub lookahead_ms: f64,
}

impl CodecImpairment {
    /// G.711 with packet loss concealment (G.113: Ie 0, Bpl 25.1).
    pub const G711: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1, lookahead_ms: 0.0 };
    /// Opus, placed on the narrowband scale: no loss-free impairment, FEC and PLC make it
    /// more robust to loss than G.711 (G.113 gives no value; this is our estimate).
    pub const OPUS: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 30.0, lookahead_ms: 6.5 };

    /// The impairment of a codec by SDP name (G.711 for anything unknown).
    pub fn for_codec(name: &str) -> CodecImpairment {
        if name.eq_ignore_ascii_case("opus") { Self::OPUS } else { Self::G711 }
    }
}

/// What the estimate is made from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityInputs {
    /// Packet loss, percent (0-100).
    pub loss_percent: f64,
    pub jitter_ms: f64,
    pub round_trip_ms: f64,
    /// Packetisation time, ms.
    pub frame_ms: f64,
    pub codec: CodecImpairment,
}

/// How a call sounds, by MOS (seed 001 thresholds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QualityAlertLevel {
    /// MOS ≥ 4.0
    Good,
    /// MOS ≥ 3.0
    Fair,
    /// MOS ≥ 2.0
    Poor,
    /// MOS < 2.0
    Critical,
}

impl QualityAlertLevel {
    pub fn from_mos(mos: f64) -> Self {
        if mos >= 4.0 {
            Self::Good
        } else if mos >= 3.0 {
            Self::Fair
        } else if mos >= 2.0 {
            Self::Poor
        } else {
            Self::Critical
        }
    }
}

impl fmt::Display for QualityAlertLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Good => "good",
            Self::Fair => "fair",
            Self::Poor => "poor",
            Self::Critical => "critical",
        })
    }
}

/// The estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityEstimate {
    pub r_factor: f64,
    pub mos: f64,
    pub level: QualityAlertLevel,
    /// The one-way delay the estimate assumed, ms.
    pub one_way_delay_ms: f64,
}

/// R-factor and MOS for `inputs`.
pub fn estimate(inputs: &QualityInputs) -> QualityEstimate {
    let delay = inputs.round_trip_ms.max(0.0) / 2.0
        + 2.0 * inputs.jitter_ms.max(0.0)
        + inputs.frame_ms.max(0.0)
        + inputs.codec.lookahead_ms;
    let id = 0.024 * delay + if delay > 177.3 { 0.11 * (delay - 177.3) } else { 0.0 };
    let ppl = inputs.loss_percent.clamp(0.0, 100.0);
    let ie_eff = inputs.codec.ie + (95.0 - inputs.codec.ie) * ppl / (ppl + inputs.codec.bpl);
    let r = (R_DEFAULT - id - ie_eff).clamp(0.0, 100.0);
    let mos = mos_from_r(r);
    QualityEstimate { r_factor: r, mos, level: QualityAlertLevel::from_mos(mos), one_way_delay_ms: delay }
}

/// The inputs of one RTCP-style interval: `fraction_lost` in 1/256 (RFC 3550 A.3) and
/// `jitter` in timestamp units of `clock_rate` (A.8), 20 ms frames, no round trip known.
pub fn interval_inputs(fraction_lost: u8, jitter: u32, clock_rate: u32, codec: CodecImpairment) -> QualityInputs {
    QualityInputs {
        loss_percent: f64::from(fraction_lost) * 100.0 / 256.0,
        jitter_ms: f64::from(jitter) * 1000.0 / f64::from(clock_rate.max(1)),
        round_trip_ms: 0.0,
        frame_ms: 20.0,
        codec,
    }
}

/// G.107 Annex B: MOS (conversational, 1-4.5) from R.
pub fn mos_from_r(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        // The cubic dips just under 1 for R below ~6.5: MOS has no meaning there.
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6).max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g711(loss_percent: f64, jitter_ms: f64, round_trip_ms: f64) -> QualityEstimate {
        estimate(&QualityInputs { loss_percent, jitter_ms, round_trip_ms, frame_ms: 20.0, codec: CodecImpairment::G711 })
    }

    #[test]
    fn a_clean_g711_call_is_good() {
        let q = g711(0.0, 0.0, 0.0);
        assert!((q.r_factor - 92.7).abs() < 0.1, "R {}", q.r_factor);
        assert!(q.mos > 4.3 && q.level == QualityAlertLevel::Good, "{q:?}");
    }

    #[test]
    fn loss_jitter_and_delay_degrade_the_score_as_g107_says() {
        // (loss %, jitter ms, RTT ms, expected level)
        let table = [
            (1.0, 5.0, 40.0, QualityAlertLevel::Good),
            (5.0, 10.0, 100.0, QualityAlertLevel::Fair),
            (15.0, 30.0, 200.0, QualityAlertLevel::Poor),
            (40.0, 80.0, 800.0, QualityAlertLevel::Critical),
        ];
        for (loss, jitter, rtt, level) in table {
            let q = g711(loss, jitter, rtt);
            assert_eq!(q.level, level, "loss {loss}% jitter {jitter} ms rtt {rtt} ms → {q:?}");
        }
    }

    #[test]
    fn each_impairment_alone_lowers_the_mos() {
        let base = g711(0.0, 0.0, 0.0).mos;
        assert!(g711(3.0, 0.0, 0.0).mos < base);
        assert!(g711(0.0, 40.0, 0.0).mos < base);
        assert!(g711(0.0, 0.0, 600.0).mos < base);
        // Beyond 177 ms one way, delay costs much more per ms.
        let near = g711(0.0, 0.0, 200.0).r_factor - g711(0.0, 0.0, 220.0).r_factor;
        let far = g711(0.0, 0.0, 500.0).r_factor - g711(0.0, 0.0, 520.0).r_factor;
        assert!(far > 4.0 * near, "near {near} far {far}");
    }

    #[test]
    fn mos_mapping_is_bounded_and_monotonic() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
        let mut last = 1.0;
        for r in 1..100 {
            let m = mos_from_r(f64::from(r));
            assert!(m >= last, "R {r}");
            last = m;
        }
        assert_eq!(QualityAlertLevel::from_mos(4.0), QualityAlertLevel::Good);
        assert_eq!(QualityAlertLevel::from_mos(2.99), QualityAlertLevel::Poor);
        assert_eq!(QualityAlertLevel::from_mos(1.5), QualityAlertLevel::Critical);
    }
}
