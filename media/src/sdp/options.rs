//! Negotiation options of the SDK (seed 001): codecs a call must use, attributes to add to
//! our SDP, and the strategy that picks the codec among those both sides support.

use std::fmt;
use std::sync::Arc;

use super::{Attribute, Codec};

/// Picks a codec name from (ours, theirs in their order); `None` = no acceptable codec.
pub type CodecChooser = dyn Fn(&[String], &[String]) -> Option<String> + Send + Sync;

/// How the codec of a call is chosen among those both sides support.
#[derive(Clone, Default)]
pub enum NegotiationStrategy {
    /// The first codec of the offer that we support (RFC 3264: the offerer's preference).
    #[default]
    FirstMatch,
    /// A wideband codec (Opus, G.722, L16/16000…) if both support one, else the first match.
    PreferWideband,
    /// A narrowband codec (G.711…) if both support one: less bandwidth per call.
    PreferNarrowband,
    /// The application decides: called with our codec names and the far end's, both in
    /// preference order, it returns the name to use.
    Custom(Arc<CodecChooser>),
}

impl fmt::Debug for NegotiationStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NegotiationStrategy::FirstMatch => f.write_str("FirstMatch"),
            NegotiationStrategy::PreferWideband => f.write_str("PreferWideband"),
            NegotiationStrategy::PreferNarrowband => f.write_str("PreferNarrowband"),
            NegotiationStrategy::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Per-call negotiation options.
#[derive(Debug, Clone, Default)]
pub struct NegotiationOptions {
    /// When not empty, the call uses one of these codec names (case-insensitive) or fails
    /// with "no common codec" (→ 488).
    pub required_codecs: Vec<String>,
    /// Added to the audio section of every SDP we write.
    pub custom_attributes: Vec<Attribute>,
    pub strategy: NegotiationStrategy,
}

impl NegotiationOptions {
    /// Whether the options allow `codec` at all.
    pub(crate) fn allows(&self, codec: &Codec) -> bool {
        self.required_codecs.is_empty() || self.required_codecs.iter().any(|r| r.eq_ignore_ascii_case(&codec.name))
    }

    /// Index in `candidates` (common codecs, far end's order) of the one to use.
    pub(crate) fn choose(&self, ours: &[Codec], candidates: &[Codec]) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        let prefer = |wide: bool| candidates.iter().position(|c| c.is_wideband() == wide).or(Some(0));
        match &self.strategy {
            NegotiationStrategy::FirstMatch => Some(0),
            NegotiationStrategy::PreferWideband => prefer(true),
            NegotiationStrategy::PreferNarrowband => prefer(false),
            NegotiationStrategy::Custom(choose) => {
                let ours: Vec<String> = ours.iter().map(|c| c.name.clone()).collect();
                let theirs: Vec<String> = candidates.iter().map(|c| c.name.clone()).collect();
                let name = choose(&ours, &theirs)?;
                candidates.iter().position(|c| c.name.eq_ignore_ascii_case(&name))
            }
        }
    }
}
