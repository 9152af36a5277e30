//! The rate ladder: constant-rate steps climbing a list of rates until one fails, then a few
//! bisections between the last passing and the first failing rate. One ladder per system
//! under test, so systems measured in the same run can alternate steps.

/// Where a system's ladder stands.
#[derive(Debug, Clone)]
pub struct Ladder {
    rates: Vec<u32>,
    climbed: usize,
    last_pass: Option<u32>,
    first_fail: Option<u32>,
    refinements_left: u32,
}

impl Ladder {
    /// Climbs `rates` (sorted, duplicates dropped), then bisects at most `refine` times.
    pub fn new(mut rates: Vec<u32>, refine: u32) -> Ladder {
        rates.sort_unstable();
        rates.dedup();
        rates.retain(|r| *r > 0);
        Ladder { rates, climbed: 0, last_pass: None, first_fail: None, refinements_left: refine }
    }

    /// The next rate to run, or `None` when the ladder is finished.
    pub fn next(&self) -> Option<u32> {
        match self.first_fail {
            None => self.rates.get(self.climbed).copied(),
            Some(hi) => {
                let lo = self.last_pass.unwrap_or(0);
                // Stop refining once the gap is within about 5 % of the passing rate.
                let close = hi - lo <= lo / 20 + 1;
                (self.refinements_left > 0 && !close).then_some(lo + (hi - lo) / 2).filter(|mid| *mid > 0)
            }
        }
    }

    /// Records the verdict of a step run at `rate` (the rate [`Ladder::next`] gave).
    pub fn record(&mut self, rate: u32, passed: bool) {
        let refining = self.first_fail.is_some();
        if refining {
            self.refinements_left = self.refinements_left.saturating_sub(1);
        } else {
            self.climbed += 1;
        }
        if passed {
            self.last_pass = Some(self.last_pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.first_fail = Some(self.first_fail.map_or(rate, |f| f.min(rate)));
        }
    }

    /// The highest rate that passed.
    pub fn max_sustained(&self) -> Option<u32> {
        self.last_pass
    }

    /// The lowest rate that failed.
    pub fn first_failure(&self) -> Option<u32> {
        self.first_fail
    }
}

/// Rates from `start` to `max` (inclusive) in steps of `step`.
pub fn linear(start: u32, step: u32, max: u32) -> Vec<u32> {
    (0..).map(|i| start.saturating_add(i * step.max(1))).take_while(|r| *r <= max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a ladder against a system that passes every rate up to `capacity`.
    fn run(rates: &[u32], refine: u32, capacity: u32) -> (Vec<u32>, Ladder) {
        let mut ladder = Ladder::new(rates.to_vec(), refine);
        let mut tried = Vec::new();
        while let Some(rate) = ladder.next() {
            tried.push(rate);
            ladder.record(rate, rate <= capacity);
            assert!(tried.len() < 100, "the ladder does not terminate: {tried:?}");
        }
        (tried, ladder)
    }

    #[test]
    fn climbs_until_a_failure_then_bisects_toward_the_capacity() {
        let (tried, ladder) = run(&[1000, 2000, 3000, 4000, 5000], 2, 3600);
        assert_eq!(tried, vec![1000, 2000, 3000, 4000, 3500, 3750]);
        assert_eq!((ladder.max_sustained(), ladder.first_failure()), (Some(3500), Some(3750)));
    }

    #[test]
    fn a_system_that_passes_everything_ends_at_the_top_rate() {
        let (tried, ladder) = run(&[300, 100, 200, 200], 3, u32::MAX);
        assert_eq!(tried, vec![100, 200, 300]);
        assert_eq!((ladder.max_sustained(), ladder.first_failure()), (Some(300), None));
    }

    #[test]
    fn a_failing_first_step_bisects_below_it() {
        let (tried, ladder) = run(&[400, 800], 2, 150);
        assert_eq!(tried, vec![400, 200, 100]);
        assert_eq!((ladder.max_sustained(), ladder.first_failure()), (Some(100), Some(200)));
    }

    #[test]
    fn refinement_stops_when_pass_and_fail_are_close() {
        let (tried, _) = run(&[1000, 1040], 5, 1020);
        assert_eq!(tried, vec![1000, 1040], "a 4 % gap is not worth another step");
    }

    #[test]
    fn no_refinement_when_asked_for_none() {
        let (tried, ladder) = run(&[10, 20, 30], 0, 15);
        assert_eq!(tried, vec![10, 20]);
        assert_eq!(ladder.max_sustained(), Some(10));
    }

    #[test]
    fn linear_rates_include_the_maximum() {
        assert_eq!(linear(500, 500, 2000), vec![500, 1000, 1500, 2000]);
        assert_eq!(linear(5, 0, 7), vec![5, 6, 7], "a zero step advances by one");
        assert!(linear(10, 5, 9).is_empty());
    }
}
