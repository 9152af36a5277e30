//! A media node's allocations: a relay's two port pairs or a room seat for a session, asked
//! of the node through the `media` queue group or addressed to it by a session node that
//! chose it by its headroom, declined while the node is at a limit (`limits.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cluster::bus::Bus;
use cluster::bus::typed::{self, Received};
use cluster::contracts::{self, MediaAllocate, MediaAllocation, MediaLeg};
use tracing::Instrument;

use crate::node::MediaNode;
use crate::relay::{self, RelayHandle};
use crate::wire::far_end;

impl MediaNode {
    fn allocate(&self, session: &str) -> Result<[u16; 2], String> {
        let ip = self.shared.config.bind_ip;
        let legs = {
            let mut pool = self.shared.pool.lock().unwrap_or_else(|e| e.into_inner());
            let a = pool.bind_pair(ip).map_err(|e| e.to_string())?;
            match pool.bind_pair(ip) {
                Ok(b) => [a, b],
                Err(e) => {
                    pool.release(a);
                    return Err(e.to_string());
                }
            }
        };
        let (events, id) = (self.shared.events.clone(), session.to_owned());
        let report: relay::EventSink = Box::new(move |e| {
            let _ = events.send((id.clone(), e));
        });
        // The relay hands its sockets back to the pool when it stops (a weak reference: the
        // node owns the relays, not the other way round).
        let shared = Arc::downgrade(&self.shared);
        let give_back: relay::OnExit = Box::new(move |legs| {
            let Some(shared) = shared.upgrade() else { return };
            let mut pool = shared.pool.lock().unwrap_or_else(|e| e.into_inner());
            for leg in legs {
                pool.release(leg);
            }
        });
        let handle = relay::start(legs, self.shared.config.no_rtp_timeout, report, give_back);
        let ports = handle.ports();
        let mut sessions = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = sessions.insert(session.to_owned(), handle) {
            self.recycle(old);
        }
        self.shared.stats.sessions.set(sessions.len());
        Ok(ports)
    }

    /// Stops a relay (it returns its ports to the pool as it ends), counting what it relayed.
    pub(crate) fn recycle(&self, relay: RelayHandle) {
        let counters = relay.counters();
        let stats = &self.shared.stats;
        stats.packets_relayed_released.fetch_add(counters.iter().map(|c| c.packets_sent).sum(), Ordering::Relaxed);
        stats.packets_refused_released.fetch_add(counters.iter().map(|c| c.refused_packets).sum(), Ordering::Relaxed);
    }

    pub(crate) async fn serve_allocations(
        self,
        mut requests: typed::TypedSubscription<MediaAllocate>,
        bus: Arc<dyn Bus>,
        draining: &'static str,
    ) {
        loop {
            let request = tokio::select! {
                request = requests.next() => request,
                _ = self.shared.config.drain.started() => None,
            };
            let Some(request) = request else { break };
            let span = tracing::info_span!("media.allocate", session = %request.message.session_id);
            request.follow(&span);
            self.answer_allocation(request, bus.as_ref()).instrument(span).await;
        }
        tracing::info!("media node draining: {draining}");
    }

    async fn answer_allocation(&self, Received { message, raw }: Received<MediaAllocate>, bus: &dyn Bus) {
        let node = self.shared.config.node_id.to_string();
        let late = message.deadline_unix_ms != 0 && contracts::unix_ms() > message.deadline_unix_ms;
        let allocated = if late {
            self.shared.stats.allocations_too_late.fetch_add(1, Ordering::Relaxed);
            Err("too late: the asker stopped waiting".to_owned())
        } else if let Some(busy) = self.declines() {
            self.shared.stats.allocations_declined.fetch_add(1, Ordering::Relaxed);
            Err(busy)
        } else if message.room.is_empty() {
            self.allocate(&message.session_id)
        } else {
            self.seat(&message.room, &message.session_id).map(|port| [port, port])
        };
        let reply = match allocated {
            Ok(ports) => {
                if let Some(Ok(caller)) = message.caller.as_ref().map(far_end)
                    && let Some(relay) = self.shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(&message.session_id)
                {
                    relay.connect(0, caller);
                }
                self.shared.stats.allocations.fetch_add(1, Ordering::Relaxed);
                let legs = ports
                    .iter()
                    .take(if message.room.is_empty() { 2 } else { 1 })
                    .enumerate()
                    .map(|(leg, port)| MediaLeg {
                        leg: leg as u32,
                        rtp_addr: SocketAddr::new(self.shared.config.advertise_ip, *port).to_string(),
                    })
                    .collect();
                MediaAllocation { meta: contracts::meta(&node), media_node_id: node, legs, error: String::new() }
            }
            Err(error) if late => {
                tracing::debug!(session = %message.session_id, %error, "media allocation not made");
                MediaAllocation { meta: contracts::meta(&node), media_node_id: node, legs: vec![], error }
            }
            Err(error) => {
                self.shared.stats.allocation_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(session = %message.session_id, %error, "media allocation failed");
                MediaAllocation { meta: contracts::meta(&node), media_node_id: node, legs: vec![], error }
            }
        };
        let _ = typed::reply(bus, &raw, &reply).await;
    }
}
