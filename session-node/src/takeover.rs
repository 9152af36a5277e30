//! Calls of a session node that died, taken over by the session nodes that survive it.
//!
//! Every node writes a heartbeat each second (`membership`); a session node that misses
//! them for [`DEAD_AFTER`] is dead to the others — one lease per node covering all its
//! calls, rather than a registry write per call. Each survivor then reads the session
//! records the dead node owned and claims its share of them — the share rendezvous
//! hashing over the live session nodes gives it, so the calls spread evenly and every
//! node agrees who takes which without talking — by a fenced compare-and-set (the epoch
//! goes up; should the dead node come back, its next write is refused). The engine is
//! rebuilt from the record, the session's events subscribed, and the edges asked to
//! publish again what they had for it meanwhile: a BYE that came while nobody owned the
//! call is answered by the new owner. The same sweep runs once at start, for calls whose
//! owners died while no session node was watching (every session node restarted).
//!
//! Relayed calls, conference seats, queue callers and agents' legs put through to them are
//! taken over (a queue caller joins its queue again, keeping the place or the agent the
//! routers held for it: `Call::rejoin`). An agent's leg still ringing is not: it writes no
//! record until it is put through.
//!
//! The same watch sees media nodes die: their calls are told (`Ctx::media_gone`), and
//! each relayed call moves its relay to another media node (`Command::Reanchor`); and
//! edges die: the requests calls send through one go through any other
//! (`Ctx::edges_gone`; both are `gone::Gone`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use cluster::bus::typed;
use cluster::contracts::{self, EdgeCommand, NodeHeartbeat, Replay, Role, edge_command};
use cluster::drain::Drain;
use cluster::membership::{self, MemberEvent};
use cluster::registry::{Bucket, RegistryError};
use cluster::subjects::{self, SessionId};
use futures::StreamExt;

use crate::call::Call;
use crate::node::{Ctx, drive};

pub use cluster::membership::DEAD_AFTER;

/// Claims in flight at once after a death (each a registry read and a compare-and-set).
const CLAIMS_AT_ONCE: usize = 32;

/// Watches the session nodes and takes over the calls of those that die.
pub(crate) async fn start(ctx: Arc<Ctx>, drain: Drain) -> Result<(), RegistryError> {
    let mut watch = membership::watch(ctx.registry.clone(), DEAD_AFTER).await?;
    tokio::spawn(async move {
        let me = ctx.node.to_string();
        // Session nodes seen, and those of them that take calls over (not draining).
        let (mut known, mut alive) = (BTreeSet::new(), BTreeSet::from([me.clone()]));
        let (mut media, mut edges) = (BTreeSet::new(), BTreeSet::new());
        // When each session node's heartbeat was last seen (how long a takeover took).
        let mut last_seen = HashMap::new();
        let sweep = tokio::time::sleep(DEAD_AFTER);
        tokio::pin!(sweep);
        let mut swept = false;
        loop {
            tokio::select! {
                event = watch.next() => match event {
                    None => break,
                    Some(MemberEvent::Joined(hb) | MemberEvent::Updated(hb)) => {
                        let id = hb.node_id.clone();
                        if runs(&hb, Role::Edge) && edges.insert(id.clone()) {
                            let gone = ctx.edges_gone.back(&id);
                            ctx.stats.edges_gone.store(gone as u64, std::sync::atomic::Ordering::Relaxed);
                        }
                        if runs(&hb, Role::Media) && media.insert(id.clone()) {
                            ctx.media_gone.back(&id);
                        }
                        if runs(&hb, Role::Session) {
                            known.insert(id.clone());
                            last_seen.insert(id.clone(), Instant::now());
                            match hb.draining {
                                false => alive.insert(id),
                                true => alive.remove(&id),
                            };
                        }
                    }
                    Some(MemberEvent::Died(node) | MemberEvent::Left(node)) if node != me => {
                        alive.remove(&node);
                        if edges.remove(&node) {
                            tracing::warn!(%node, "edge gone: requests go through the others");
                            let gone = ctx.edges_gone.died(&node);
                            ctx.stats.edges_gone.store(gone as u64, std::sync::atomic::Ordering::Relaxed);
                        }
                        if media.remove(&node) {
                            tracing::warn!(%node, "media node gone: its calls move to another");
                            ctx.media_gone.died(&node);
                        }
                        if known.remove(&node) {
                            tracing::warn!(%node, "session node gone: taking over its calls");
                            claim(&ctx, &alive, |owner| owner == node, last_seen.remove(&node)).await;
                        }
                    }
                    Some(_) => {}
                },
                // Once the live nodes had time to be seen: calls whose owner is none of them
                // (a draining node is alive: its calls are its own until it dies).
                _ = &mut sweep, if !swept => {
                    swept = true;
                    claim(&ctx, &alive, |owner| !known.contains(owner), None).await;
                }
                _ = drain.started() => break,
            }
        }
    });
    Ok(())
}

/// Whether the node of `hb` runs `role` (alone or with every role).
fn runs(hb: &NodeHeartbeat, role: Role) -> bool {
    Role::try_from(hb.role).is_ok_and(|r| r == role || r == Role::All)
}

/// Claims this node's share of the sessions whose owner is `orphaned`, and resumes them
/// (timed from `last_seen`, when the owner was last heard of). Up to [`CLAIMS_AT_ONCE`]
/// claims are in flight at a time; each call is resumed as soon as it is claimed.
async fn claim(ctx: &Arc<Ctx>, alive: &BTreeSet<String>, orphaned: impl Fn(&str) -> bool, last_seen: Option<Instant>) {
    let started = Instant::now();
    let keys = match ctx.registry.keys(Bucket::Sessions, "").await {
        Ok(keys) => keys,
        Err(e) => return tracing::warn!(error = %e, "session records not listed: no takeover"),
    };
    let me = ctx.node.as_str();
    let orphaned = &orphaned;
    let one = |key: String| async move {
        let id = SessionId::new(key).ok()?;
        let (record, _) = ctx.store.load(&id).await.ok()??;
        if record.owner == me || !orphaned(&record.owner) || chosen(id.as_str(), alive) != Some(me) {
            return None;
        }
        let owned = match ctx.store.claim(&id, &record.owner).await {
            Ok(owned) => owned,
            Err(e) => {
                tracing::info!(session = %id, error = %e, "session not claimed");
                return None;
            }
        };
        let call = Call::resume(ctx.clone(), id.clone(), owned);
        if call.is_none() {
            tracing::warn!(session = %id, kind = %record.kind, "session claimed but not resumable yet");
        }
        call
    };
    let mut claims = futures::stream::iter(keys).map(one).buffer_unordered(CLAIMS_AT_ONCE);
    let mut taken = 0;
    while let Some(claimed) = claims.next().await {
        let Some(call) = claimed else { continue };
        taken += 1;
        ctx.stats.taken_over.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(seen) = last_seen {
            ctx.stats.takeover.observe(seen.elapsed());
        }
        tokio::spawn(resume(ctx.clone(), call));
    }
    if taken > 0 {
        tracing::warn!(calls = taken, ms = started.elapsed().as_millis() as u64, "calls taken over");
    }
}

/// Runs a call taken over: its events subscribed first, then the edges asked for what
/// came while it had no owner.
async fn resume(ctx: Arc<Ctx>, mut call: Call) {
    let _active = ctx.stats.active.begin();
    call.move_lost_seat().await;
    call.rejoin().await;
    let id = call.id.clone();
    let replay = async {
        let command = EdgeCommand {
            meta: contracts::meta(ctx.node.as_str()),
            session_id: id.to_string(),
            command: Some(edge_command::Command::Replay(Replay {})),
        };
        if let Err(e) = typed::publish(ctx.bus.as_ref(), &subjects::all_edge_commands(), &command).await {
            tracing::warn!(session = %id, error = %e, "edges not asked to replay");
        }
    };
    drive(ctx.clone(), call, replay).await;
}

/// Which of `alive` takes `session`: the highest hash of the two (rendezvous hashing).
fn chosen<'a>(session: &str, alive: &'a BTreeSet<String>) -> Option<&'a str> {
    alive.iter().max_by_key(|node| hash(session.as_bytes(), node.as_bytes())).map(String::as_str)
}

/// FNV-1a over `a` then `b`, mixed by MurmurHash3's finaliser (FNV alone barely tells
/// apart names that differ in their last byte): the same on every node, whatever its build.
fn hash(a: &[u8], b: &[u8]) -> u64 {
    let fnv = a.iter().chain([0u8].iter()).chain(b);
    let h = fnv.fold(0xcbf2_9ce4_8422_2325, |h, byte| (h ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3));
    let h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_agrees_who_takes_a_call_and_calls_spread() {
        let alive: BTreeSet<String> = ["session-0", "session-1", "session-2"].map(String::from).into();
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..3000 {
            let session = format!("s{i:08x}");
            let a = chosen(&session, &alive).unwrap();
            assert_eq!(chosen(&session, &alive.clone()), Some(a));
            *counts.entry(a.to_owned()).or_insert(0) += 1;
        }
        assert!(counts.values().all(|n| (800..1200).contains(n)), "spread evenly: {counts:?}");
        // A node leaving moves only its own calls.
        let fewer: BTreeSet<String> = ["session-0", "session-2"].map(String::from).into();
        for i in 0..300 {
            let session = format!("s{i:08x}");
            let before = chosen(&session, &alive).unwrap();
            if before != "session-1" {
                assert_eq!(chosen(&session, &fewer), Some(before));
            }
        }
    }
}
