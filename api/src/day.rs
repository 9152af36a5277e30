//! The day's figures of each queue — answered, answered within its service level, abandoned,
//! the total wait of those answered — kept as the call records come: read once from midnight
//! (UTC), then followed. A snapshot (the wallboard's, `Queues.List`) reads the tally rather
//! than the day's records again. Every API node follows the same journal, so all agree.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster::journal::{Journal, Log, Start};
use contracts::Cdr;
use futures::StreamExt;
use prost::Message;

const DAY_MS: u64 = 86_400_000;

/// One queue's day.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub answered: u64,
    pub within_service_level: u64,
    pub abandoned: u64,
    /// The queue waits of the calls answered, summed.
    pub answered_wait_ms: u64,
}

#[derive(Default)]
struct Tally {
    /// The day counted (days since the epoch).
    day: u64,
    queues: HashMap<String, Counts>,
}

impl Tally {
    fn add(&mut self, cdr: &Cdr, levels: &BTreeMap<String, u64>) {
        let day = cdr.end_ms / DAY_MS;
        if day > self.day {
            *self = Tally { day, ..Default::default() };
        }
        if day < self.day || cdr.kind != "queue" {
            return;
        }
        let counts = self.queues.entry(cdr.queue.clone()).or_default();
        if !cdr.agent.is_empty() {
            counts.answered += 1;
            counts.answered_wait_ms += cdr.queue_wait_ms;
            if levels.get(&cdr.queue).is_some_and(|level| cdr.queue_wait_ms <= *level) {
                counts.within_service_level += 1;
            }
        } else if cdr.disposition == "abandoned" {
            counts.abandoned += 1;
        }
    }
}

/// The day's tally, kept by a task that follows the records. Cheap to clone.
#[derive(Clone)]
pub struct Day(Arc<Mutex<Tally>>);

impl Day {
    /// Starts following `journal`'s records from midnight; `levels`: each queue's service
    /// level in milliseconds.
    pub fn follow(journal: Arc<dyn Journal>, levels: BTreeMap<String, u64>) -> Day {
        let day = Day(Arc::new(Mutex::new(Tally::default())));
        let tally = day.0.clone();
        tokio::spawn(async move {
            let now = contracts::unix_ms();
            let mut start = Start::Time(now - now % DAY_MS);
            loop {
                match journal.read(Log::Cdrs, start, true).await {
                    Ok(mut records) => {
                        while let Some(Ok(entry)) = records.next().await {
                            start = Start::Sequence(entry.sequence + 1);
                            if let Ok(cdr) = Cdr::decode(entry.payload) {
                                tally.lock().unwrap_or_else(|e| e.into_inner()).add(&cdr, &levels);
                            }
                        }
                        tracing::warn!("the call records' journal stopped: following it again");
                    }
                    Err(e) => tracing::warn!(error = %e, "the call records' journal not read: trying again"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        day
    }

    /// `queue`'s figures today (nothing yet on a day no record has ended in).
    pub fn counts(&self, queue: &str) -> Counts {
        let tally = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match tally.day == contracts::unix_ms() / DAY_MS {
            true => tally.queues.get(queue).copied().unwrap_or_default(),
            false => Counts::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(queue: &str, agent: &str, disposition: &str, wait_ms: u64, end_ms: u64) -> Cdr {
        let kind = "queue".into();
        Cdr {
            kind,
            queue: queue.into(),
            agent: agent.into(),
            disposition: disposition.into(),
            queue_wait_ms: wait_ms,
            end_ms,
            ..Default::default()
        }
    }

    #[test]
    fn a_day_counts_its_queue_calls_and_starts_again_at_midnight() {
        let levels = BTreeMap::from([("help".to_owned(), 20_000)]);
        let mut tally = Tally::default();
        let today = 20_000 * DAY_MS;
        tally.add(&record("help", "ann", "answered", 5_000, today + 1), &levels);
        tally.add(&record("help", "bob", "answered", 30_000, today + 2), &levels);
        tally.add(&record("help", "", "abandoned", 40_000, today + 3), &levels);
        tally.add(&Cdr { kind: "call".into(), ..record("help", "", "answered", 0, today + 4) }, &levels);
        tally.add(&record("help", "ann", "answered", 1_000, today - 1), &levels);
        let want = Counts { answered: 2, within_service_level: 1, abandoned: 1, answered_wait_ms: 35_000 };
        assert_eq!(tally.queues["help"], want);
        tally.add(&record("help", "", "abandoned", 1_000, today + DAY_MS), &levels);
        assert_eq!(tally.queues["help"], Counts { abandoned: 1, ..Default::default() }, "a new day");
    }
}
