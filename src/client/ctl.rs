//! `callmesh ctl`: the operator's view and levers over the API — agents (list, log in, log
//! out, break), queues (as they stand and the day's figures), calls (list, hang up,
//! transfer, record, originate), nodes (list, drain), and the event feed as JSON lines
//! (from a sequence number, by kind).

use std::io::Write;

use anyhow::Context;
use contracts::agents_client::AgentsClient;
use contracts::calls_client::CallsClient;
use contracts::events_client::EventsClient;
use contracts::nodes_client::NodesClient;
use contracts::queues_client::QueuesClient;
use contracts::{AgentState, AgentStatus, ListAgentsRequest, ListCallsRequest, ListQueuesRequest, SetAgentStatusRequest};
use contracts::{CallRequest, DrainRequest, ListNodesRequest, OriginateRequest, TransferRequest};
use contracts::{SubscribeRequest, event};

use super::{ApiArgs, connect, status};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Ctl {
    /// The agents: status, state, since when, calls answered.
    Agents,
    /// Logs an agent in (available for calls).
    Login { agent: String },
    /// Logs an agent out.
    Logout { agent: String },
    /// Puts an agent on a break (logged in, offered nothing).
    Break { agent: String },
    /// The queues: callers waiting, longest wait, agents, the day's figures.
    Queues,
    /// The calls in progress.
    Calls,
    /// Hangs a call up.
    Hangup { session: String },
    /// Puts a call's caller through to a SIP URI (whoever it talks to is let go).
    Transfer { session: String, target: String },
    /// Starts recording a call.
    Record { session: String },
    /// Stops recording a call.
    StopRecording { session: String },
    /// Rings an agent, then (once it answers) calls a number.
    Originate {
        agent: String,
        number: String,
        /// Who the number sees calling (a SIP URI).
        #[arg(long)]
        caller_id: Option<String>,
    },
    /// The nodes alive: role, calls, draining.
    Nodes,
    /// Drains a node: it takes no new work and lets its calls finish (it keeps running).
    Drain { node: String },
    /// Follows the event feed, one JSON object per line.
    Events {
        /// From this sequence number (1: the oldest kept; default: from now on).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Only these kinds: call, queue, agent (repeatable).
        #[arg(long = "kind")]
        kinds: Vec<String>,
    },
}

fn state_name(s: i32) -> &'static str {
    match AgentState::try_from(s) {
        Ok(AgentState::Reserved) => "reserved",
        Ok(AgentState::Receiving) => "ringing",
        Ok(AgentState::InQueueCall) => "on-call",
        Ok(AgentState::WrapUp) => "wrap-up",
        _ => "waiting",
    }
}

fn ago(since_ms: u64, now_ms: u64) -> String {
    match since_ms {
        0 => "-".into(),
        s => format!("{}s", now_ms.saturating_sub(s) / 1000),
    }
}

/// Runs one `ctl` command against the API.
pub async fn run(command: &Ctl, args: &ApiArgs, default: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    let (channel, bearer) = connect(args, default).await?;
    let now = contracts::unix_ms();
    let mut out = std::io::stdout().lock();
    match command {
        Ctl::Agents => {
            let agents = AgentsClient::with_interceptor(channel, bearer).list(ListAgentsRequest {}).await.map_err(status)?;
            writeln!(out, "{:<20} {:<11} {:<9} {:>8} {:>8}  queues", "AGENT", "STATUS", "STATE", "IN STATE", "ANSWERED")?;
            for a in agents.into_inner().agents {
                let (st, state) = (api::board::status(a.status), state_name(a.state));
                let since = ago(a.state_since_ms, now);
                writeln!(out, "{:<20} {st:<11} {state:<9} {since:>8} {:>8}  {}", a.agent, a.calls_answered, a.queues.join(","))?;
            }
        }
        Ctl::Login { agent } | Ctl::Logout { agent } | Ctl::Break { agent } => {
            let wanted = match command {
                Ctl::Login { .. } => AgentStatus::Available,
                Ctl::Logout { .. } => AgentStatus::LoggedOut,
                _ => AgentStatus::OnBreak,
            };
            let request = SetAgentStatusRequest { agent: agent.clone(), status: wanted as i32 };
            let a = AgentsClient::with_interceptor(channel, bearer).set_status(request).await.map_err(status)?.into_inner();
            writeln!(out, "{} {}", a.agent, api::board::status(a.status))?;
        }
        Ctl::Queues => {
            let queues = QueuesClient::with_interceptor(channel, bearer).list(ListQueuesRequest {}).await.map_err(status)?;
            writeln!(
                out,
                "{:<16} {:>7} {:>8} {:>7} {:>5} {:>6} {:>7} {:>6} {:>8} {:>9} {:>9} {:>6}",
                "QUEUE",
                "WAITING",
                "LONGEST",
                "TALKING",
                "IDLE",
                "ON-CALL",
                "WRAP-UP",
                "BREAK",
                "ANSWERED",
                "IN-SL",
                "ABANDONED",
                "ASA"
            )?;
            for q in queues.into_inner().queues {
                writeln!(
                    out,
                    "{:<16} {:>7} {:>7}s {:>7} {:>5} {:>6} {:>7} {:>6} {:>8} {:>9} {:>9} {:>5}s",
                    q.queue,
                    q.waiting + q.offered,
                    q.longest_wait_ms / 1000,
                    q.talking,
                    q.agents_idle,
                    q.agents_talking + q.agents_ringing,
                    q.agents_wrap_up,
                    q.agents_on_break,
                    q.answered,
                    q.answered_within_service_level,
                    q.abandoned,
                    q.average_speed_of_answer_ms / 1000,
                )?;
            }
        }
        Ctl::Calls => {
            let calls = CallsClient::with_interceptor(channel, bearer).list(ListCallsRequest {}).await.map_err(status)?;
            writeln!(out, "{:<18} {:<10} {:<14} {:>7}  caller -> callee", "SESSION", "KIND", "OWNER", "AGE")?;
            for c in calls.into_inner().calls {
                let age = ago(c.start_ms, now);
                writeln!(out, "{:<18} {:<10} {:<14} {age:>7}  {} -> {}", c.session_id, c.kind, c.owner, c.caller, c.callee)?;
            }
        }
        Ctl::Hangup { session } | Ctl::Record { session } | Ctl::StopRecording { session } => {
            let mut calls = CallsClient::with_interceptor(channel, bearer);
            let request = CallRequest { session_id: session.clone() };
            let (done, what) = match command {
                Ctl::Hangup { .. } => (calls.hangup(request).await, "hanging up"),
                Ctl::Record { .. } => (calls.start_recording(request).await, "recording"),
                _ => (calls.stop_recording(request).await, "recording stopped"),
            };
            writeln!(out, "{} {what}", done.map_err(status)?.into_inner().session_id)?;
        }
        Ctl::Transfer { session, target } => {
            let request = TransferRequest { session_id: session.clone(), target: target.clone() };
            let call = CallsClient::with_interceptor(channel, bearer).transfer(request).await.map_err(status)?.into_inner();
            writeln!(out, "{} transferring to {target}", call.session_id)?;
        }
        Ctl::Originate { agent, number, caller_id } => {
            let request = OriginateRequest {
                agent: agent.clone(),
                number: number.clone(),
                caller_id: caller_id.clone().unwrap_or_default(),
                ring_secs: 0,
            };
            let placed = CallsClient::with_interceptor(channel, bearer).originate(request).await.map_err(status)?.into_inner();
            writeln!(out, "{} ringing {agent}, then {number}", placed.session_id)?;
        }
        Ctl::Nodes => {
            let nodes = NodesClient::with_interceptor(channel, bearer).list(ListNodesRequest {}).await.map_err(status)?;
            writeln!(out, "{:<24} {:<8} {:>6} {:<9} {:>8}  addresses", "NODE", "ROLE", "CALLS", "DRAINING", "UP")?;
            for n in nodes.into_inner().nodes {
                let up = ago(n.started_at_unix_ms, now);
                let draining = if n.draining { "yes" } else { "no" };
                writeln!(
                    out,
                    "{:<24} {:<8} {:>6} {draining:<9} {up:>8}  {}",
                    n.node_id,
                    n.role,
                    n.active_calls,
                    n.addresses.join(" ")
                )?;
            }
        }
        Ctl::Drain { node } => {
            let request = DrainRequest { node_id: node.clone() };
            let n = NodesClient::with_interceptor(channel, bearer).drain(request).await.map_err(status)?.into_inner();
            writeln!(out, "{} draining ({} calls in progress)", n.node_id, n.active_calls)?;
        }
        Ctl::Events { from, kinds } => {
            let request = SubscribeRequest { from_sequence: *from, kinds: kinds.clone() };
            let mut client = EventsClient::with_interceptor(channel, bearer);
            let mut events = client.subscribe(request).await.map_err(status)?.into_inner();
            while let Some(e) = events.message().await.map_err(status)? {
                let body = match &e.event {
                    Some(event::Event::Call(c)) => format!("{c:?}"),
                    Some(event::Event::Queue(q)) => format!("{:?}", q.event),
                    None => String::new(),
                };
                let line = serde_json::json!({"sequence": e.sequence, "at_ms": e.at_unix_ms, "kind": e.kind, "event": body});
                writeln!(out, "{line}").context("writing to stdout")?;
                out.flush()?;
            }
        }
    }
    Ok(())
}
