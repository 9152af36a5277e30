//! The journals' conformance suite, run against `MemoryJournal` on the in-process bus and
//! `JetStreamJournal` on a real nats-server: records appended once per id, events kept from
//! the bus, reads from a sequence, a time or now, and a reader resuming where it stopped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cluster::bus::{Bus, LocalBus, NatsBus};
use cluster::journal::{Entries, Entry, JetStreamJournal, Journal, JournalConfig, Log, MemoryJournal, Start};
use cluster::subjects;
use futures::StreamExt;
use testkit::nats::NatsServer;

struct Fabric {
    bus: Arc<dyn Bus>,
    journal: Arc<dyn Journal>,
    _server: Option<NatsServer>,
}

async fn local() -> Fabric {
    let bus = LocalBus::default();
    let journal = MemoryJournal::default();
    journal.capture(&bus).await.unwrap();
    Fabric { bus: Arc::new(bus), journal: Arc::new(journal), _server: None }
}

async fn nats() -> Fabric {
    let server = NatsServer::start().expect("nats-server starts");
    let bus = NatsBus::connect(&server.url, "test").await.expect("connects to NATS");
    let journal = JetStreamJournal::connect(bus.client().clone(), &JournalConfig::with_replicas(1)).await.expect("streams");
    Fabric { bus: Arc::new(bus), journal: Arc::new(journal), _server: Some(server) }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod local { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::local().await).await }
        )* }
        mod nats { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::nats().await).await }
        )* }
    };
}

both!(
    records_are_kept_once_per_id_in_order,
    an_empty_journal_reads_as_nothing,
    events_on_the_bus_are_kept_and_a_reader_resumes_where_it_stopped,
    a_read_from_now_sees_only_what_comes_after,
    a_read_from_a_time_starts_at_the_first_entry_since,
);

/// The next entry, waited 10 s at most.
async fn next(entries: &mut Entries, what: &str) -> Entry {
    tokio::time::timeout(Duration::from_secs(10), entries.next())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("the read ended before {what}"))
        .unwrap()
}

/// Everything a read that does not follow gives, until it ends (10 s at most).
async fn all(entries: Entries) -> Vec<Bytes> {
    let read = entries.map(|e| e.unwrap().payload).collect::<Vec<_>>();
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("a read up to now ends")
}

async fn records_are_kept_once_per_id_in_order(f: Fabric) {
    let j = f.journal.as_ref();
    let a = j.append(Log::Cdrs, "s-a", Bytes::from_static(b"a")).await.unwrap();
    let b = j.append(Log::Cdrs, "s-b", Bytes::from_static(b"b")).await.unwrap();
    assert!(b > a);
    assert_eq!(j.append(Log::Cdrs, "s-a", Bytes::from_static(b"a again")).await.unwrap(), a, "a second write of s-a");
    assert_eq!(all(j.read(Log::Cdrs, Start::Sequence(1), false).await.unwrap()).await, ["a", "b"]);
    assert_eq!(all(j.read(Log::Cdrs, Start::Sequence(b), false).await.unwrap()).await, ["b"]);
    assert_eq!(all(j.read(Log::Cdrs, Start::Sequence(b + 1), false).await.unwrap()).await, Vec::<Bytes>::new());
    // The events journal is another log.
    assert_eq!(all(j.read(Log::Events, Start::Sequence(1), false).await.unwrap()).await, Vec::<Bytes>::new());
}

async fn an_empty_journal_reads_as_nothing(f: Fabric) {
    for start in [Start::Sequence(1), Start::Time(0), Start::New] {
        assert!(all(f.journal.read(Log::Cdrs, start, false).await.unwrap()).await.is_empty(), "{start:?}");
    }
}

async fn publish(bus: &dyn Bus, queue: bool, payload: String) {
    let subject = if queue { subjects::acd_events() } else { subjects::call_events() };
    bus.publish(&subject, Default::default(), Bytes::from(payload)).await.unwrap();
}

async fn events_on_the_bus_are_kept_and_a_reader_resumes_where_it_stopped(f: Fabric) {
    let mut reader = f.journal.read(Log::Events, Start::Sequence(1), true).await.unwrap();
    for i in 0..5 {
        publish(f.bus.as_ref(), i % 2 == 0, format!("e{i}")).await;
    }
    let mut last = 0;
    for i in 0..5 {
        let e = next(&mut reader, &format!("event {i}")).await;
        assert_eq!(e.payload, format!("e{i}"));
        assert!(e.sequence > last);
        let subject = if i % 2 == 0 { subjects::acd_events() } else { subjects::call_events() };
        assert_eq!(e.subject, subject.to_string());
        last = e.sequence;
    }
    // The reader goes away; three more events come; it comes back after the last it saw.
    drop(reader);
    for i in 5..8 {
        publish(f.bus.as_ref(), true, format!("e{i}")).await;
    }
    let mut reader = f.journal.read(Log::Events, Start::Sequence(last + 1), true).await.unwrap();
    for i in 5..8 {
        assert_eq!(next(&mut reader, &format!("event {i} after resuming")).await.payload, format!("e{i}"));
    }
    // Nothing repeated or extra: the next is one published now.
    publish(f.bus.as_ref(), false, "e8".into()).await;
    assert_eq!(next(&mut reader, "event 8").await.payload, "e8");
}

async fn a_read_from_now_sees_only_what_comes_after(f: Fabric) {
    let j = f.journal.as_ref();
    j.append(Log::Cdrs, "old", Bytes::from_static(b"old")).await.unwrap();
    let mut reader = j.read(Log::Cdrs, Start::New, true).await.unwrap();
    j.append(Log::Cdrs, "new", Bytes::from_static(b"new")).await.unwrap();
    assert_eq!(next(&mut reader, "the record appended after the read began").await.payload, "new");
}

async fn a_read_from_a_time_starts_at_the_first_entry_since(f: Fabric) {
    let j = f.journal.as_ref();
    j.append(Log::Cdrs, "before", Bytes::from_static(b"before")).await.unwrap();
    // The clock moves on past the first entry's millisecond (not a wait for anything else).
    let first = j.read(Log::Cdrs, Start::Sequence(1), false).await.unwrap().next().await.unwrap().unwrap();
    while cluster::contracts::unix_ms() <= first.at_unix_ms {
        tokio::task::yield_now().await;
    }
    let since = cluster::contracts::unix_ms();
    j.append(Log::Cdrs, "after", Bytes::from_static(b"after")).await.unwrap();
    assert_eq!(all(j.read(Log::Cdrs, Start::Time(since), false).await.unwrap()).await, ["after"]);
    assert!(all(j.read(Log::Cdrs, Start::Time(since + 3_600_000), false).await.unwrap()).await.is_empty());
}
