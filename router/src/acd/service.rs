//! The ACD as the router role runs it: every router plans every quarter second over the
//! registry (`RegistryStore`), takes what sessions report (`acd.reports`, queue group
//! `routers`), and tells each caller's session what to do (`session.<id>.acd`): ring an
//! agent — at its configured contact, or at the devices it registered — cancel a ring,
//! bridge, leave the queue, or what to play at its announcement. Time is the Unix clock in milliseconds, shared by routers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cluster::bus::typed;
use cluster::bus::{Bus, BusError};
use cluster::contracts::{
    self, AcdAnnounce, AcdBridge, AcdCancel, AcdInstruction, AcdOffer, AcdOverflow, AcdReport, Role, acd_instruction, acd_report,
};
use cluster::drain::Drain;
use cluster::locations;
use cluster::membership::{self, MemberEvent};
use cluster::registry::Registry;
use cluster::subjects::{self, NodeId, SessionId, groups};

use super::feed;
use super::{
    Acd, AcdEvent, AcdStore, AgentSpec, CallerRecord, Decline, Outcome, Overflow, QueueSpec, RegistryStore, Status, StoreError,
};

/// Why the ACD cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AcdStartError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often each router plans.
const TICK: Duration = Duration::from_millis(250);
/// How often each router publishes its queues' statistics.
const STATS: Duration = Duration::from_secs(5);

/// A random draw in `0..n` (random strategies).
fn draw(n: u64) -> u64 {
    rand::random_range(0..n.max(1))
}

/// The queues and agents a router serves.
#[derive(Debug, Clone, Default)]
pub struct AcdSettings {
    pub queues: Vec<QueueSpec>,
    /// Each agent with its status when its record is first made.
    pub agents: Vec<(AgentSpec, Status)>,
}

struct Service {
    acd: Acd,
    store: RegistryStore,
    bus: Arc<dyn Bus>,
    registry: Arc<dyn Registry>,
    node: NodeId,
    contacts: BTreeMap<String, Option<String>>,
}

/// Starts the ACD on a router (nothing to do without queues).
pub async fn start(
    settings: AcdSettings,
    node: NodeId,
    bus: Arc<dyn Bus>,
    registry: Arc<dyn Registry>,
    drain: Drain,
) -> Result<(), AcdStartError> {
    if settings.queues.is_empty() {
        return Ok(());
    }
    let store = RegistryStore::start(registry.clone()).await?;
    let statuses: BTreeMap<String, Status> = settings.agents.iter().map(|(a, s)| (a.id.clone(), *s)).collect();
    let contacts = settings.agents.iter().map(|(a, _)| (a.id.clone(), a.contact.clone())).collect();
    let specs = settings.agents.into_iter().map(|(a, _)| a).collect();
    let acd = Acd::new(node.as_str(), settings.queues, specs);
    let now = contracts::unix_ms();
    if let Err(e) = acd.ensure_agents(&store, |a| statuses.get(&a.id).copied().unwrap_or(Status::Available), now).await {
        tracing::warn!(error = %e, "agents' records not made yet");
    }
    let mut reports = typed::queue_subscribe::<AcdReport>(bus.as_ref(), &subjects::acd_reports(), groups::ROUTERS).await?;
    let mut members = match membership::watch(registry.clone(), membership::DEAD_AFTER).await {
        Ok(watch) => Some(watch),
        Err(e) => {
            tracing::warn!(error = %e, "no membership watch: queue callers of dead session nodes stay");
            None
        }
    };
    let service = Arc::new(Service { acd, store, bus, registry, node, contacts });
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut stats = tokio::time::interval(STATS);
        // Session nodes seen: when one dies, its queue callers are gone.
        let mut sessions = BTreeSet::new();
        loop {
            tokio::select! {
                report = reports.next() => {
                    let Some(report) = report else { break };
                    if let Some(acd_report::Report::Where(_)) = report.message.report {
                        service.announce(&report.message.session_id).await;
                        continue;
                    }
                    let outcome = service.report(report.message).await;
                    service.carry_out(outcome).await;
                    // A caller arrived or left, an agent came free: plan now, not at the next tick.
                    let outcome = service.acd.tick(&service.store, contracts::unix_ms(), draw).await;
                    service.carry_out(outcome).await;
                }
                _ = ticker.tick() => {
                    let outcome = service.acd.tick(&service.store, contracts::unix_ms(), draw).await;
                    service.carry_out(outcome).await;
                }
                _ = stats.tick() => service.publish_stats().await,
                member = next_member(&mut members) => match member {
                    Some(MemberEvent::Joined(hb) | MemberEvent::Updated(hb)) => {
                        if matches!(Role::try_from(hb.role), Ok(Role::Session | Role::All)) {
                            sessions.insert(hb.node_id);
                        }
                    }
                    Some(MemberEvent::Died(node) | MemberEvent::Left(node)) if sessions.remove(&node) => {
                        tracing::warn!(%node, "session node gone: its queue callers adrift until taken over");
                        let outcome = service.acd.orphaned(&service.store, &node, contracts::unix_ms()).await;
                        service.carry_out(outcome).await;
                    }
                    Some(_) => {}
                    None => members = None,
                },
                _ = drain.started() => break,
            }
        }
        tracing::info!("router draining: the ACD stopped planning");
    });
    Ok(())
}

/// The next membership event (pending for ever without a watch).
async fn next_member(watch: &mut Option<membership::MemberWatch>) -> Option<MemberEvent> {
    match watch {
        Some(w) => w.next().await,
        None => std::future::pending().await,
    }
}

impl Service {
    async fn report(&self, report: AcdReport) -> Outcome {
        let (store, now, session) = (&self.store as &dyn AcdStore, contracts::unix_ms(), report.session_id.as_str());
        match report.report {
            Some(acd_report::Report::Join(j)) => {
                let mut caller = CallerRecord::new(session, &j.queue, j.priority, now);
                caller.requires = Some(j.requires).filter(|r| !r.is_empty());
                caller.who = j.who.to_ascii_lowercase();
                caller.owner = report.meta.as_ref().map(|m| m.sender.clone()).unwrap_or_default();
                match j.resumed {
                    true => {
                        let bridged = Some(j.bridged_agent).filter(|a| !a.is_empty());
                        self.acd.rejoined(store, caller, bridged, now).await
                    }
                    false => self.acd.join(store, caller).await,
                }
            }
            Some(acd_report::Report::Answered(a)) => self.acd.answered(store, session, &a.agent, now).await,
            Some(acd_report::Report::Declined(d)) => {
                let why = match d.why.as_str() {
                    "busy" => Decline::Busy,
                    "rejected" => Decline::Rejected,
                    _ => Decline::NoAnswer,
                };
                self.acd.declined(store, session, &d.agent, why, now).await
            }
            Some(acd_report::Report::Left(_)) => self.acd.left(store, session, now).await,
            Some(acd_report::Report::Ended(_)) => {
                feed::publish(self.bus.as_ref(), self.node.as_str(), feed::ended(session)).await;
                self.acd.ended(store, session, now).await
            }
            Some(acd_report::Report::Key(k)) => match k.digit.chars().next() {
                Some(digit) => self.acd.key(store, session, digit, now).await,
                None => Ok(Vec::new()),
            },
            Some(acd_report::Report::Where(_)) | None => Ok(Vec::new()),
        }
    }

    /// Tells a waiting caller's session what to play at its announcement.
    async fn announce(&self, session: &str) {
        let files = match self.acd.announcement(&self.store, session, contracts::unix_ms()).await {
            Ok(files) if !files.is_empty() => files,
            Ok(_) => return,
            Err(e) => return tracing::warn!(%session, error = %e, "no announcement"),
        };
        self.instruct(session.to_owned(), acd_instruction::Instruction::Announce(AcdAnnounce { files })).await;
    }

    async fn instruct(&self, caller: String, instruction: acd_instruction::Instruction) {
        let Ok(session) = SessionId::new(caller.clone()) else { return };
        let message =
            AcdInstruction { meta: contracts::meta(self.node.as_str()), session_id: caller, instruction: Some(instruction) };
        if let Err(e) = typed::publish(self.bus.as_ref(), &subjects::session_acd(&session), &message).await {
            tracing::warn!(%session, error = %e, "ACD instruction not sent");
        }
    }

    /// Each queue as it stands, on the feed.
    async fn publish_stats(&self) {
        let (Ok(agents), Ok(callers)) = (self.store.agents().await, self.store.callers().await) else { return };
        let records = agents.into_iter().map(|(id, (r, _))| (id, r)).collect();
        let callers: Vec<CallerRecord> = callers.into_iter().map(|(c, _)| c).collect();
        let (queues, specs) = self.acd.served();
        for mut s in feed::stats(&queues, specs, &records, &callers, contracts::unix_ms()) {
            let c = self.acd.counts(&s.queue);
            (s.answered, s.answered_within_service_level, s.abandoned) =
                (c.answered, c.answered_within_service_level, c.abandoned);
            s.average_speed_of_answer_ms = c.answer_wait_ms.checked_div(c.answered).unwrap_or(0);
            feed::publish(self.bus.as_ref(), self.node.as_str(), cluster::contracts::queue_event::Event::Stats(s)).await;
        }
    }

    /// Sends what was decided to the callers' sessions (also when the store failed after).
    async fn carry_out(&self, outcome: Outcome) {
        let events = match outcome {
            Ok(events) => events,
            Err(failed) => {
                tracing::warn!(error = %failed.error, "ACD store");
                failed.events
            }
        };
        for event in events {
            if let Some(fed) = feed::of(&event) {
                feed::publish(self.bus.as_ref(), self.node.as_str(), fed).await;
            }
            let (caller, instruction) = match event {
                AcdEvent::Offer { caller, agent, until_ms } => {
                    let offer = self.offer(&agent, until_ms).await;
                    (caller, acd_instruction::Instruction::Offer(offer))
                }
                AcdEvent::Cancel { caller, agent } => (caller, acd_instruction::Instruction::Cancel(AcdCancel { agent })),
                AcdEvent::Bridge { caller, agent } => (caller, acd_instruction::Instruction::Bridge(AcdBridge { agent })),
                AcdEvent::Overflow { caller, target } => {
                    let overflow = match target {
                        Overflow::Queue(q) => AcdOverflow { target: format!("queue:{q}"), status: 0 },
                        Overflow::Uri(uri) => AcdOverflow { target: uri, status: 0 },
                        Overflow::Refuse(status) => AcdOverflow { target: String::new(), status: u32::from(status) },
                    };
                    (caller, acd_instruction::Instruction::Overflow(overflow))
                }
                AcdEvent::Joined { .. } => continue,
                AcdEvent::NoAnswer { caller, agent } => {
                    tracing::info!(%caller, %agent, "agent did not answer");
                    continue;
                }
                AcdEvent::OnBreak { agent } => {
                    tracing::warn!(%agent, "agent put on break after unanswered offers");
                    continue;
                }
                AcdEvent::Abandoned { caller } => {
                    tracing::info!(%caller, "caller abandoned the queue");
                    continue;
                }
            };
            self.instruct(caller, instruction).await;
        }
    }

    /// Where to ring `agent`: its configured contact, or every device it registered.
    async fn offer(&self, agent: &str, until_ms: u64) -> AcdOffer {
        let mut offer = AcdOffer { agent: agent.to_owned(), until_ms, ..Default::default() };
        if let Some(Some(contact)) = self.contacts.get(agent) {
            offer.contacts = vec![contact.clone()];
            return offer;
        }
        let mut bindings = locations::lookup(self.registry.as_ref(), agent, contracts::unix_ms()).await.unwrap_or_default();
        bindings.sort_by_key(|b| std::cmp::Reverse(b.expires_unix_ms));
        if let Some(first) = bindings.first() {
            offer.edge_id = first.edge_id.clone();
            offer.flow = first.source.clone();
        }
        offer.contacts = bindings.into_iter().map(|b| b.contact).collect();
        offer
    }
}
