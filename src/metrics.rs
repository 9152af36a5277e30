//! `/metrics` in the Prometheus text format, named by Prometheus conventions: the
//! `callmesh_` prefix, the role, units in the name (`_seconds`), counters ending in
//! `_total`, histograms for call setup and media allocation. docs/operations.md lists them.

use std::fmt::Write;

use cluster::metrics::HistogramSnapshot;

use crate::roles::Node;

/// Writes metric families, each with its HELP and TYPE lines.
struct Exposition(String);

impl Exposition {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP callmesh_{name} {help}\n# TYPE callmesh_{name} {kind}");
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.head(name, "counter", help);
        let _ = writeln!(self.0, "callmesh_{name} {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.head(name, "gauge", help);
        let _ = writeln!(self.0, "callmesh_{name} {value}");
    }

    fn histogram(&mut self, name: &str, help: &str, h: &HistogramSnapshot) {
        self.head(name, "histogram", help);
        for (bound, count) in &h.buckets {
            let le = if bound.is_infinite() { "+Inf".to_owned() } else { bound.to_string() };
            let _ = writeln!(self.0, "callmesh_{name}_bucket{{le=\"{le}\"}} {count}");
        }
        let _ = writeln!(self.0, "callmesh_{name}_sum {}\ncallmesh_{name}_count {}", h.sum_seconds, h.count);
    }
}

/// The metrics of every role the node runs.
pub async fn render(node: &Node) -> String {
    let mut m = Exposition(String::new());
    m.head("build_info", "gauge", "The running version and role (always 1).");
    let _ = writeln!(m.0, "callmesh_build_info{{version=\"{}\",role=\"{}\"}} 1", env!("CARGO_PKG_VERSION"), node.role.name());
    m.gauge("node_ready", "1 when the node takes new work (what /readyz says).", u64::from(node.readiness().is_ready()));
    m.gauge("node_draining", "1 while the node drains.", u64::from(node.drain.is_draining()));
    if let Some(edge) = &node.edge {
        let s = &edge.stats;
        m.counter("edge_calls_total", "New INVITEs published to the routers.", s.calls.get());
        m.counter("edge_calls_unclaimed_total", "New calls refused with 503 because no node took them.", s.unclaimed.get());
        m.counter(
            "edge_calls_published_again_total",
            "New calls published again because no node acted on them within 1.5 s.",
            s.published_again.get(),
        );
        m.counter(
            "edge_commands_disowned_total",
            "Commands dropped because another copy of their call won it.",
            s.disowned.get(),
        );
        m.counter("edge_in_dialog_requests_total", "In-dialog requests forwarded to their session.", s.in_dialog.get());
        m.counter(
            "edge_responses_relayed_total",
            "Responses relayed to the edge sharing our address that sent their request (sip.reuse_port).",
            s.relayed.get(),
        );
        m.counter("edge_registrations_total", "REGISTER requests received.", s.registrations.get());
        m.counter("edge_bad_commands_total", "Commands from other nodes that could not be carried out.", s.bad_commands.get());
        m.histogram(
            "edge_call_setup_seconds",
            "From a new INVITE to the first ringing or answer sent back to the caller.",
            &s.call_setup.snapshot(),
        );
        if let Some(t) = edge.endpoint_stats().await {
            let tx = &t.transactions;
            m.counter("sip_requests_received_total", "SIP requests received.", tx.requests_received);
            m.counter("sip_responses_received_total", "SIP responses received.", tx.responses_received);
            m.counter(
                "sip_requests_rejected_total",
                "Requests answered with an error before any node saw them.",
                tx.requests_rejected,
            );
            m.counter("sip_messages_dropped_total", "Messages dropped (malformed responses, strays).", tx.messages_dropped);
            m.counter("sip_retransmissions_sent_total", "Retransmissions sent.", tx.retransmissions_sent);
            m.gauge("sip_server_transactions", "Server transactions open.", tx.server_transactions as u64);
            m.gauge("sip_client_transactions", "Client transactions open.", tx.client_transactions as u64);
            m.gauge("sip_tcp_connections", "TCP connections open.", t.tcp_connections as u64);
        }
    }
    if let Some(r) = &node.router {
        m.counter("router_calls_routed_total", "Calls sent to the session nodes.", r.routed.get());
        m.counter("router_calls_rejected_total", "Calls refused by policy or dial plan.", r.rejected.get());
    }
    if let Some(s) = &node.session {
        use std::sync::atomic::Ordering::Relaxed;
        m.counter("session_calls_started_total", "Calls taken by this session node.", s.started.load(Relaxed));
        m.gauge("session_calls_active", "Calls in progress.", s.active.count() as u64);
        m.counter("session_calls_answered_total", "Calls that were answered, ended.", s.answered.load(Relaxed));
        m.counter("session_calls_unanswered_total", "Calls that ended without an answer.", s.unanswered.load(Relaxed));
        m.counter(
            "session_calls_taken_over_total",
            "Calls this node took over from session nodes that died.",
            s.taken_over.load(Relaxed),
        );
        m.histogram(
            "session_takeover_seconds",
            "Calls taken over: from their owner's last heartbeat seen to the call resumed here.",
            &s.takeover.snapshot(),
        );
        m.gauge(
            "session_edges_gone",
            "Edges this node saw die (its requests go through the others).",
            s.edges_gone.load(Relaxed),
        );
        m.histogram(
            "session_media_allocation_seconds",
            "How long a call waited for its media allocation, bus round trip included.",
            &s.media_allocation.snapshot(),
        );
        m.histogram(
            "session_acd_offer_wait_seconds",
            "Queue callers: from joining the queue to the first agent's offer.",
            &s.acd_offer_wait.snapshot(),
        );
        m.histogram(
            "session_acd_answer_wait_seconds",
            "Queue callers: from joining the queue to an agent put through (speed of answer).",
            &s.acd_answer_wait.snapshot(),
        );
        m.counter(
            "session_acd_talk_ms_total",
            "Queue calls: milliseconds callers and agents talked (agent occupancy over staffed time).",
            s.acd_talk_ms.load(Relaxed),
        );
    }
    if let Some(media) = &node.media {
        use std::sync::atomic::Ordering::Relaxed;
        m.gauge("media_sessions_active", "Sessions whose RTP this node relays.", media.active_sessions() as u64);
        m.gauge("media_free_port_pairs", "RTP/RTCP port pairs free.", media.free_port_pairs() as u64);
        m.counter("media_rtp_packets_relayed_total", "RTP packets relayed.", media.packets_relayed());
        m.counter(
            "media_dtmf_digits_total",
            "DTMF digits read from RTP (RFC 4733 events or tones in G.711 audio) and reported to sessions.",
            media.stats().dtmf_digits.load(std::sync::atomic::Ordering::Relaxed),
        );
        m.counter(
            "media_quality_alerts_total",
            "Times a relayed leg's quality fell to poor or critical (E-model MOS under 3.0 over 5 s).",
            media.stats().quality_alerts.load(std::sync::atomic::Ordering::Relaxed),
        );
        let (rooms, seats) = media.room_counts();
        m.gauge("media_rooms_open", "Conference rooms mixed by this node.", rooms as u64);
        m.gauge("media_room_seats", "Seats taken in this node's conference rooms.", seats as u64);
        m.counter(
            "media_packets_refused_total",
            "RTP/RTCP packets dropped because they came from a source the leg takes no media from.",
            media.packets_refused(),
        );
        m.counter("media_allocations_total", "Relays and room seats allocated.", media.stats().allocations.load(Relaxed));
        m.counter(
            "media_allocation_failures_total",
            "Allocations refused (no ports, or at a limit).",
            media.stats().allocation_failures.load(Relaxed),
        );
        m.counter(
            "media_allocations_declined_total",
            "Allocations declined because the node was at media.max_sessions or media.max_cpu_percent.",
            media.stats().allocations_declined.load(Relaxed),
        );
        m.counter(
            "media_allocations_too_late_total",
            "Allocations not made because they came after the session node stopped waiting for them.",
            media.stats().allocations_too_late.load(Relaxed),
        );
        m.counter(
            "media_relays_reaped_total",
            "Relays released because their call had no record in the session registry.",
            media.stats().relays_reaped.load(Relaxed),
        );
        m.gauge(
            "media_cpu_percent",
            "This process' CPU use over the last second, in percent of all cores.",
            media.cpu_percent() as u64,
        );
    }
    m.counter("bus_decode_errors_total", "Bus messages that did not decode (dropped).", cluster::metrics::decode_errors());
    m.counter(
        "bus_slow_consumer_drops_total",
        "Messages the in-process bus dropped for a subscriber that stayed full.",
        cluster::metrics::slow_consumer_drops(),
    );
    m.0
}
