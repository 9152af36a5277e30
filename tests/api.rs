//! The integrator's API, as an integrator uses it: over gRPC with a bearer token, against
//! `callmesh all` and against a cluster of processes with two API nodes on a real
//! nats-server. A queue call between SDK phones is followed in the event feed (which a
//! client resumes after a disconnect with nothing lost or repeated), listed while it is up,
//! and leaves exactly one record per session, exported as JSON lines by
//! `callmesh cdr export`; agents are logged in and out; both API nodes say the same; a
//! node is drained through the API.

mod common;

use std::time::Duration;

use callmesh::client::{ApiArgs, Authed, Bearer, connect};
use common::Callmesh;
use contracts::agents_client::AgentsClient;
use contracts::calls_client::CallsClient;
use contracts::cdrs_client::CdrsClient;
use contracts::events_client::EventsClient;
use contracts::nodes_client::NodesClient;
use contracts::queues_client::QueuesClient;
use contracts::{
    AgentStatus, DrainRequest, Event, ExportRequest, ListAgentsRequest, ListCallsRequest, ListNodesRequest, ListQueuesRequest,
    SetAgentStatusRequest, SubscribeRequest, call_notice, event, queue_event,
};
use session_core::peer::{IncomingCallPolicy, SimplePeer};
use testkit::ports::free_local_addr;
use tonic::Streaming;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const WAIT: Duration = Duration::from_secs(10);
const TOKEN: &str = "api-test-token-0123456789";

/// A queue `help` (`sip:7000@…`) with one agent, an SDK phone that takes every call; the
/// TOML for it and the agent.
async fn queue_with_an_agent() -> (SimplePeer, String) {
    let agent = SimplePeer::builder("agent").incoming_call_policy(IncomingCallPolicy::AcceptAll).build().await.unwrap();
    let config = format!(
        "[[queues]]\nname = \"help\"\n[[agents]]\nuser = \"agent\"\ncontact = \"{}\"\nqueues = [\"help\"]\n\
         [[routes]]\nuser = '^7000$'\ntarget = \"queue:help\"\n",
        agent.uri()
    );
    (agent, config)
}

fn api_section(addr: std::net::SocketAddr) -> String {
    format!("[api]\nlisten = \"{addr}\"\ntokens = [\"{TOKEN}\"]\n")
}

async fn api(addr: std::net::SocketAddr, token: Option<&str>) -> (Channel, Bearer) {
    let args = ApiArgs { api: Some(format!("http://{addr}")), token: token.map(str::to_owned) };
    connect(&args, None).await.expect("the API answers")
}

async fn feed(addr: std::net::SocketAddr, from: u64, kinds: &[&str]) -> Streaming<Event> {
    let (channel, bearer) = api(addr, Some(TOKEN)).await;
    let request = SubscribeRequest { from_sequence: from, kinds: kinds.iter().map(|k| (*k).to_owned()).collect() };
    EventsClient::with_interceptor(channel, bearer).subscribe(request).await.expect("subscribed").into_inner()
}

/// The feed's next event (10 s at most).
async fn next(feed: &mut Streaming<Event>, what: &str) -> Event {
    let next = tokio::time::timeout(WAIT, feed.message()).await;
    next.unwrap_or_else(|_| panic!("no event in 10 s waiting for {what}")).expect("the feed goes on").expect("an event")
}

/// Events until `n` call records (ended notices) have come.
async fn until_ended(feed: &mut Streaming<Event>, n: usize) -> Vec<Event> {
    let mut events = Vec::new();
    while events.iter().filter(|e| ended(e).is_some()).count() < n {
        events.push(next(feed, "the calls' ended notices").await);
    }
    events
}

fn ended(e: &Event) -> Option<&contracts::Cdr> {
    match &e.event {
        Some(event::Event::Call(c)) => match &c.notice {
            Some(call_notice::Notice::Ended(cdr)) => Some(cdr),
            _ => None,
        },
        _ => None,
    }
}

/// A short name for each event: `call started queue`, `queue caller_joined`, …
fn name(e: &Event) -> String {
    match &e.event {
        Some(event::Event::Call(c)) => match &c.notice {
            Some(call_notice::Notice::Started(s)) => format!("call started {}", s.kind),
            Some(call_notice::Notice::Answered(_)) => "call answered".into(),
            Some(call_notice::Notice::Ended(c)) => format!("call ended {}", c.kind),
            None => "call ?".into(),
        },
        Some(event::Event::Queue(q)) => match &q.event {
            Some(queue_event::Event::CallerJoined(j)) => format!("queue caller_joined {}", j.queue),
            Some(queue_event::Event::AgentOffered(o)) => format!("agent offered {}", o.agent),
            Some(queue_event::Event::AgentAnswered(o)) => format!("agent answered {}", o.agent),
            Some(queue_event::Event::CallEnded(_)) => "queue call_ended".into(),
            Some(queue_event::Event::Stats(_)) => "queue stats".into(),
            Some(queue_event::Event::AgentStatus(s)) => format!("agent status {} {}", s.agent, s.status),
            other => format!("{other:?}"),
        },
        None => "?".into(),
    }
}

/// The answer of the server's reflection service to one request.
async fn reflect(channel: Channel, request: MessageRequest) -> Option<MessageResponse> {
    let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut client = ServerReflectionClient::new(channel);
    let mut answers = client.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    answers.message().await.unwrap().and_then(|a| a.message_response)
}

/// One queue call: the caller reaches the agent, they talk, the caller hangs up. The
/// caller's SIP Call-ID.
async fn queue_call(cm: &Callmesh, agent: &SimplePeer, while_up: impl AsyncFnOnce(&str)) -> String {
    let caller = SimplePeer::new("caller").await.unwrap();
    let call = caller.call(&format!("sip:7000@{}", cm.sip[0])).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    testkit::wait::until("the agent to take the call", WAIT, || !agent.active_calls().is_empty()).await;
    agent.active_calls()[0].wait_established(WAIT).await.unwrap();
    while_up(call.id().as_str()).await;
    call.hangup().await.unwrap();
    call.wait_ended(WAIT).await.unwrap();
    testkit::wait::until("the agent's call to end", WAIT, || agent.active_calls().is_empty()).await;
    call.id().as_str().to_owned()
}

/// Waits until the API lists a call with `call_id` in queue `help`, put through to `agent`.
async fn listed(channel: Channel, bearer: Bearer, call_id: &str) {
    let calls: CallsClient<Authed> = CallsClient::with_interceptor(channel, bearer);
    let find = || {
        let mut calls = calls.clone();
        async move {
            let list = calls.list(ListCallsRequest {}).await.unwrap().into_inner().calls;
            list.into_iter().find(|c| c.call_ids.iter().any(|id| id == call_id) && c.agent == "agent")
        }
    };
    testkit::wait::until_async("the call listed with its agent", WAIT, || async { find().await.is_some() }).await;
    let c = find().await.unwrap();
    assert_eq!((c.kind.as_str(), c.queue.as_str(), c.answered), ("queue", "help", true), "{c:?}");
    assert!(c.caller.contains("caller") && c.callee.starts_with("sip:7000@"), "{c:?}");
    let got = calls.clone().get(contracts::GetCallRequest { session_id: c.session_id.clone() }).await.unwrap();
    assert_eq!(got.into_inner(), c);
}

/// `callmesh cdr export` against `addr`: its JSON lines.
fn export(addr: std::net::SocketAddr, since: Option<&str>) -> Vec<serde_json::Value> {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_callmesh"));
    cmd.args(["cdr", "export", "--api", &format!("http://{addr}")]).env("CALLMESH_API_TOKEN", TOKEN);
    if let Some(s) = since {
        cmd.args(["--since", s]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "cdr export: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).expect("a JSON object per line")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_follows_a_queue_call_through_callmesh_all() {
    let (agent, config) = queue_with_an_agent().await;
    let addr = free_local_addr();
    let config = format!("{}{config}", api_section(addr));
    let cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(&config)).await.unwrap();

    // Without a token, or with another, the API refuses; the health service is open.
    for token in [None, Some("not-the-token-0123456789")] {
        let (channel, bearer) = api(addr, token).await;
        let refused = AgentsClient::with_interceptor(channel, bearer).list(ListAgentsRequest {}).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{token:?}");
    }
    let (channel, _) = api(addr, None).await;
    let request = tonic_health::pb::HealthCheckRequest { service: "callmesh.v1.Events".into() };
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone()).check(request).await.unwrap().into_inner();
    assert_eq!(health.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    // So is reflection, which grpcurl lists and describes the services with.
    let services = reflect(channel.clone(), MessageRequest::ListServices(String::new())).await;
    let Some(MessageResponse::ListServicesResponse(list)) = services else { panic!("{services:?}") };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for want in ["callmesh.v1.Events", "callmesh.v1.Cdrs", "callmesh.v1.Calls", "callmesh.v1.Agents", "grpc.health.v1.Health"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let file = reflect(channel, MessageRequest::FileContainingSymbol("callmesh.v1.Calls".into())).await;
    assert!(matches!(file, Some(MessageResponse::FileDescriptorResponse(f)) if !f.file_descriptor_proto.is_empty()));

    let mut events = feed(addr, 1, &[]).await;
    let (channel, bearer) = api(addr, Some(TOKEN)).await;
    let call_id = queue_call(&cm, &agent, async |id: &str| listed(channel.clone(), bearer.clone(), id).await).await;

    // The feed tells the whole call: both sessions start, the caller joins, the agent is
    // offered it and answers, both sessions end with their records.
    let seen = until_ended(&mut events, 2).await;
    let names: Vec<String> = seen.iter().map(name).filter(|n| n != "queue stats").collect();
    for want in ["call started queue", "queue caller_joined help", "agent offered agent", "call started agent"] {
        assert!(names.iter().any(|n| n == want), "{want:?} in {names:?}");
    }
    for want in ["agent answered agent", "call answered", "call ended queue", "call ended agent"] {
        assert!(names.iter().any(|n| n == want), "{want:?} in {names:?}");
    }
    let sequences: Vec<u64> = seen.iter().map(|e| e.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[1] == w[0] + 1), "one after the other: {sequences:?}");

    // A client that went away after the third event comes back after it: the same events
    // follow, none lost or repeated.
    drop(events);
    let mut resumed = feed(addr, seen[2].sequence + 1, &[]).await;
    for e in &seen[3..] {
        assert_eq!(next(&mut resumed, "the events after the third again").await, *e);
    }

    // Exactly one record per session, exported as JSON lines.
    let records = export(addr, None);
    assert_eq!(records.len(), 2, "{records:?}");
    let queue = records.iter().find(|r| r["kind"] == "queue").expect("the caller's record");
    let leg = records.iter().find(|r| r["kind"] == "agent").expect("the agent leg's record");
    assert_eq!(queue["call_ids"][0], call_id.as_str());
    assert_eq!((&queue["queue"], &queue["agent"], &queue["disposition"]), (&"help".into(), &"agent".into(), &"answered".into()));
    assert_eq!(queue["hangup_by"], "caller");
    assert!(queue["caller"].as_str().unwrap().contains("caller"), "{queue}");
    assert!(queue["answer_ms"].as_u64().unwrap() >= queue["start_ms"].as_u64().unwrap(), "{queue}");
    assert!(queue["end_ms"].as_u64().unwrap() >= queue["answer_ms"].as_u64().unwrap(), "{queue}");
    assert_eq!(leg["caller_session"], queue["session_id"]);
    assert_eq!(leg["agent"], "agent");
    assert!(export(addr, Some(&format!("{}", contracts::unix_ms() + 3_600_000))).is_empty(), "nothing after an hour from now");

    // The queue's day (counted as the records come): one answered, none abandoned.
    let queues = QueuesClient::with_interceptor(channel.clone(), bearer.clone());
    let help = || {
        let mut queues = queues.clone();
        async move { queues.list(ListQueuesRequest {}).await.unwrap().into_inner().queues.remove(0) }
    };
    testkit::wait::until_async("the day's answered call counted", WAIT, || async { help().await.answered == 1 }).await;
    let help = help().await;
    assert_eq!((help.queue.as_str(), help.answered, help.abandoned, help.waiting), ("help", 1, 0, 0));

    // The agent goes on a break: its record says so, and so does the feed.
    let mut agents_feed = feed(addr, 0, &["agent"]).await;
    let mut agents = AgentsClient::with_interceptor(channel, bearer);
    let set = SetAgentStatusRequest { agent: "agent".into(), status: AgentStatus::OnBreak as i32 };
    assert_eq!(agents.set_status(set).await.unwrap().into_inner().status, AgentStatus::OnBreak as i32);
    let listed = agents.list(ListAgentsRequest {}).await.unwrap().into_inner().agents;
    assert_eq!((listed[0].agent.as_str(), listed[0].status, listed[0].calls_answered), ("agent", AgentStatus::OnBreak as i32, 1));
    assert_eq!(
        name(&next(&mut agents_feed, "the agent's break").await),
        format!("agent status agent {}", AgentStatus::OnBreak as i32)
    );
    let unknown = SetAgentStatusRequest { agent: "nobody".into(), status: AgentStatus::Available as i32 };
    assert_eq!(agents.set_status(unknown).await.unwrap_err().code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_nodes_of_a_cluster_say_the_same() {
    let (agent, config) = queue_with_an_agent().await;
    let (min, max) = common::rtp_range();
    let config = format!("[media]\nrtp_ports = \"{min}-{max}\"\n{config}");
    let addrs = [free_local_addr(), free_local_addr()];
    let apis = addrs.map(api_section);
    let cm = tokio::task::spawn_blocking(move || {
        let processes = [
            ("edge", "edge-0", ""),
            ("router", "router-0", ""),
            ("session", "session-0", ""),
            ("media", "media-0", ""),
            ("api", "api-0", apis[0].as_str()),
            ("api", "api-1", apis[1].as_str()),
        ];
        Callmesh::processes(&config, &processes)
    })
    .await
    .unwrap();
    let mut feeds = [feed(addrs[0], 1, &[]).await, feed(addrs[1], 1, &[]).await];
    let call_id = queue_call(&cm, &agent, async |_: &str| {}).await;

    // Both feeds give the same events, with the same sequences.
    let first = until_ended(&mut feeds[0], 2).await;
    let mut second = Vec::new();
    for _ in &first {
        second.push(next(&mut feeds[1], "the same events from the other API node").await);
    }
    assert_eq!(first, second);
    assert!(first.iter().any(|e| name(e) == "queue caller_joined help"), "{:?}", first.iter().map(name).collect::<Vec<_>>());

    // The same records from either.
    let mut exported = Vec::new();
    for addr in addrs {
        let (channel, bearer) = api(addr, Some(TOKEN)).await;
        let mut records =
            CdrsClient::with_interceptor(channel, bearer).export(ExportRequest::default()).await.unwrap().into_inner();
        let mut all = Vec::new();
        while let Some(entry) = records.message().await.unwrap() {
            all.push(entry);
        }
        exported.push(all);
    }
    assert_eq!(exported[0], exported[1]);
    assert_eq!(exported[0].len(), 2);
    let caller = exported[0].iter().filter_map(|e| e.cdr.as_ref()).find(|c| c.kind == "queue").unwrap();
    assert_eq!(caller.legs[0].call_id, call_id);

    // An agent logged out through one is logged out for the other.
    let (channel, bearer) = api(addrs[0], Some(TOKEN)).await;
    let out = SetAgentStatusRequest { agent: "agent".into(), status: AgentStatus::LoggedOut as i32 };
    AgentsClient::with_interceptor(channel, bearer).set_status(out).await.unwrap();
    let (channel, bearer) = api(addrs[1], Some(TOKEN)).await;
    let other = AgentsClient::with_interceptor(channel, bearer);
    testkit::wait::until_async("the other API node to see the agent logged out", WAIT, || {
        let mut other = other.clone();
        async move { other.list(ListAgentsRequest {}).await.unwrap().into_inner().agents[0].status == AgentStatus::LoggedOut as i32 }
    })
    .await;

    // Every node is listed; one drained through the API says so and turns unready.
    let (channel, bearer) = api(addrs[1], Some(TOKEN)).await;
    let mut nodes = NodesClient::with_interceptor(channel, bearer);
    let listed = nodes.list(ListNodesRequest {}).await.unwrap().into_inner().nodes;
    let roles: Vec<(&str, &str)> = listed.iter().map(|n| (n.node_id.as_str(), n.role.as_str())).collect();
    let want = [("api-0", "api"), ("api-1", "api"), ("edge-0", "edge"), ("media-0", "media"), ("router-0", "router")];
    assert_eq!(roles, [&want[..], &[("session-0", "session")]].concat());
    let drained = nodes.drain(DrainRequest { node_id: "session-0".into() }).await.unwrap().into_inner();
    assert_eq!((drained.node_id.as_str(), drained.draining), ("session-0", true));
    let session_http = cm.http[2];
    tokio::task::block_in_place(|| common::wait_readyz(session_http, 503, "the drained session node to turn unready"));
    let nobody = DrainRequest { node_id: "session-9".into() };
    assert_eq!(nodes.drain(nobody).await.unwrap_err().code(), tonic::Code::NotFound);
}
