//! Session ownership (fencing epochs, leases, takeover) and membership (join, leave, death),
//! on both backends.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cluster::contracts::{EngineState, NodeHeartbeat, NodeLoad, Role};
use cluster::membership::{self, Heartbeat, MemberEvent};
use cluster::ownership::{OwnershipError, SessionStore};
use cluster::registry::RegistryConfig;
use cluster::subjects::{NodeId, SessionId};
use common::{Fabric, within};

conformance!(RegistryConfig::default();
    a_takeover_fences_the_old_owner,
    an_expired_lease_can_be_taken_without_force,
    a_dead_nodes_session_is_claimed_by_one_survivor,
    members_join_leave_and_die,
);

fn store(f: &Fabric, node: &str, clock: Arc<AtomicU64>) -> SessionStore {
    SessionStore::new(f.registry.clone(), NodeId::new(node).unwrap(), Duration::from_secs(10))
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)))
}

async fn a_takeover_fences_the_old_owner(f: Fabric) {
    let clock = Arc::new(AtomicU64::new(1_000_000));
    let (a, b) = (store(&f, "session-a", clock.clone()), store(&f, "session-b", clock.clone()));
    let id = SessionId::new("call-1").unwrap();
    let mut owned_a = a.create(&id, EngineState { session: "Ringing".into(), ..Default::default() }).await.unwrap();
    assert_eq!(owned_a.epoch(), 1);
    assert!(matches!(a.create(&id, EngineState::default()).await, Err(OwnershipError::Exists(_))));
    owned_a.engine_mut().session = "Answered".into();
    a.save(&mut owned_a).await.unwrap();

    let refused = b.take_over(&id, false).await.unwrap_err();
    assert!(matches!(refused, OwnershipError::LeaseActive { ref owner, .. } if owner == "session-a"), "{refused}");

    let mut owned_b = b.take_over(&id, true).await.unwrap();
    assert_eq!((owned_b.epoch(), owned_b.record.owner.as_str()), (2, "session-b"));
    assert_eq!(owned_b.record.engine.as_ref().unwrap().session, "Answered", "the new owner continues from the record");

    owned_a.engine_mut().session = "Stale".into();
    let fenced = a.save(&mut owned_a).await.unwrap_err();
    assert_eq!(fenced, OwnershipError::Fenced { session: "call-1".into(), owner: "session-b".into(), epoch: 2, ours: 1 });
    let (record, _) = b.load(&id).await.unwrap().unwrap();
    assert_eq!(record.engine.unwrap().session, "Answered", "the stale write did not land");

    owned_b.engine_mut().session = "Held".into();
    b.save(&mut owned_b).await.unwrap();
    assert!(matches!(a.remove(owned_a).await, Err(OwnershipError::Fenced { .. })));
    b.remove(owned_b).await.unwrap();
    assert!(b.load(&id).await.unwrap().is_none());
}

async fn an_expired_lease_can_be_taken_without_force(f: Fabric) {
    let clock = Arc::new(AtomicU64::new(5_000_000));
    let (a, b) = (store(&f, "node-a", clock.clone()), store(&f, "node-b", clock.clone()));
    let id = SessionId::new("call-2").unwrap();
    a.create(&id, EngineState::default()).await.unwrap();
    clock.fetch_add(10_001, Ordering::SeqCst);
    let owned = b.take_over(&id, false).await.unwrap();
    assert_eq!(owned.epoch(), 2);
    assert_eq!(owned.record.lease_expires_unix_ms, 5_010_001 + 10_000);
    let missing = SessionId::new("nope").unwrap();
    assert!(matches!(b.take_over(&missing, true).await, Err(OwnershipError::NotFound(_))));
}

async fn a_dead_nodes_session_is_claimed_by_one_survivor(f: Fabric) {
    let clock = Arc::new(AtomicU64::new(7_000_000));
    let (dead, b, c) =
        (store(&f, "node-a", clock.clone()), store(&f, "node-b", clock.clone()), store(&f, "node-c", clock.clone()));
    let id = SessionId::new("call-3").unwrap();
    let mut record =
        cluster::contracts::SessionRecord { kind: "queue".into(), busy_keys: vec!["busy.alice".into()], ..Default::default() };
    record.engine = Some(EngineState { session: "Answered".into(), ..Default::default() });
    let mut owned_dead = dead.create_record(&id, record).await.unwrap();
    // Two survivors claim at once from the dead node, its lease still running: one wins.
    let (by_b, by_c) = tokio::join!(b.claim(&id, "node-a"), c.claim(&id, "node-a"));
    let winner = match (by_b, by_c) {
        (Ok(owned), Err(OwnershipError::Fenced { .. })) | (Err(OwnershipError::Fenced { .. }), Ok(owned)) => owned,
        other => panic!("exactly one claim wins: {other:?}"),
    };
    assert_eq!(winner.epoch(), 2);
    assert_eq!((winner.record.kind.as_str(), winner.record.busy_keys.as_slice()), ("queue", &["busy.alice".to_owned()][..]));
    // A claim from a node that does not own it any more fails; the dead node, back, is fenced.
    let again = if winner.record.owner == "node-b" { &c } else { &b };
    assert!(matches!(again.claim(&id, "node-a").await, Err(OwnershipError::Fenced { .. })));
    assert!(matches!(dead.save(&mut owned_dead).await, Err(OwnershipError::Fenced { .. })));
}

fn heartbeat(node: &'static str, calls: Arc<AtomicU64>) -> impl Fn() -> NodeHeartbeat + Send + 'static {
    move || NodeHeartbeat {
        node_id: node.into(),
        role: Role::Session as i32,
        load: Some(NodeLoad { active_calls: calls.load(Ordering::SeqCst) as u32, ..Default::default() }),
        ..Default::default()
    }
}

async fn members_join_leave_and_die(f: Fabric) {
    let ttl = Duration::from_millis(800);
    let interval = Duration::from_millis(150);
    let calls = Arc::new(AtomicU64::new(3));
    // The watching node's own heartbeat, as a real node has.
    let watcher = Heartbeat::start(f.registry.clone(), interval, heartbeat("watcher", calls.clone()));
    let a = Heartbeat::start(f.registry.clone(), interval, heartbeat("member-a", calls.clone()));
    let mut watch = membership::watch(f.registry.clone(), ttl).await.unwrap();
    let mut joined_a = false;
    while !joined_a {
        match within("member-a joining", watch.next()).await.unwrap() {
            MemberEvent::Joined(hb) if hb.node_id == "member-a" => {
                assert_eq!(hb.load.unwrap().active_calls, 3);
                joined_a = true;
            }
            MemberEvent::Joined(_) | MemberEvent::Updated(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let b = Heartbeat::start(f.registry.clone(), interval, heartbeat("member-b", calls.clone()));
    let mut joined_b = false;
    while !joined_b {
        match within("member-b joining", watch.next()).await.unwrap() {
            MemberEvent::Joined(hb) => joined_b = hb.node_id == "member-b",
            MemberEvent::Updated(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // Listed alive: each heartbeat younger than the TTL when read (a heartbeat written late
    // under load can be older for a moment: listed again until all three are).
    testkit::wait::until_async("three members listed alive", Duration::from_secs(5), || async {
        membership::members(f.registry.as_ref(), ttl).await.unwrap().len() == 3
    })
    .await;
    b.leave().await.unwrap();
    loop {
        match within("member-b leaving", watch.next()).await.unwrap() {
            MemberEvent::Left(node) if node == "member-b" => break,
            MemberEvent::Updated(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(a);
    loop {
        match within("member-a dying (no heartbeat for the TTL)", watch.next()).await.unwrap() {
            MemberEvent::Died(node) if node == "member-a" => break,
            MemberEvent::Updated(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    // Every heartbeat stops at once (the registry, or the watcher's link, failing): for
    // three TTLs nobody is declared dead. When the watcher's own heartbeat flows again,
    // the node that stayed silent is.
    let c = Heartbeat::start(f.registry.clone(), interval, heartbeat("member-c", calls.clone()));
    loop {
        match within("member-c joining", watch.next()).await.unwrap() {
            MemberEvent::Joined(hb) if hb.node_id == "member-c" => break,
            MemberEvent::Updated(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    drop((watcher, c));
    let silent = tokio::time::timeout(3 * ttl, async {
        loop {
            match watch.next().await {
                Some(MemberEvent::Updated(_)) => {}
                other => return other,
            }
        }
    });
    assert!(silent.await.is_err(), "no verdict while the bucket is silent");
    let _watcher = Heartbeat::start(f.registry.clone(), interval, heartbeat("watcher", calls.clone()));
    loop {
        match within("the silent node declared dead once heartbeats flow", watch.next()).await.unwrap() {
            MemberEvent::Died(node) => {
                assert_eq!(node, "member-c", "only the node that stays silent");
                break;
            }
            MemberEvent::Updated(_) | MemberEvent::Joined(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
