//! An operator's hands on a call through the API, against `callmesh all` with SDK phones and
//! real audio: a call from alice to bob is recorded on request, transferred to carol (bob
//! is let go, alice and carol hear each other), then hung up — and its one detail record
//! names all three legs and the recording. Requests the API cannot honour are refused with
//! the status that says why. And a call placed for an operator rings the agent, then the
//! number; the two talk, and when one hangs up the other is let go.

mod common;

use std::time::Duration;

use callmesh::client::{ApiArgs, Authed, connect};
use common::Callmesh;
use common::faults::{ALICE, BOB, calls_up, hear_now};
use common::tones::play;
use contracts::calls_client::CallsClient;
use contracts::cdrs_client::CdrsClient;
use contracts::{CallRequest, ExportRequest, ListCallsRequest, OriginateRequest, TransferRequest};
use session_core::peer::{IncomingCallPolicy, SimplePeer};
use testkit::ports::free_local_addr;

const WAIT: Duration = Duration::from_secs(10);
const TOKEN: &str = "api-test-token-0123456789";

/// Every call record the API exports, once there are `n` at least (10 s at most).
async fn records(export: CdrsClient<Authed>, n: usize) -> Vec<contracts::Cdr> {
    let find = || {
        let mut export = export.clone();
        async move {
            let mut stream = export.export(ExportRequest::default()).await.unwrap().into_inner();
            let mut all = Vec::new();
            while let Some(entry) = stream.message().await.unwrap() {
                all.extend(entry.cdr);
            }
            all
        }
    };
    testkit::wait::until_async("the calls' records", WAIT, || async { find().await.len() >= n }).await;
    find().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_records_transfers_and_hangs_up_a_call() {
    let accepting = |name: &'static str| SimplePeer::builder(name).incoming_call_policy(IncomingCallPolicy::AcceptAll).build();
    let (bob, carol) = (accepting("bob").await.unwrap(), accepting("carol").await.unwrap());
    let recordings = tempfile::tempdir().unwrap();
    let api_addr = free_local_addr();
    let config = format!(
        "[api]\nlisten = \"{api_addr}\"\ntokens = [\"{TOKEN}\"]\n[media]\nrecordings_dir = \"{}\"\n\
         [[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n",
        recordings.path().display(),
        bob.uri()
    );
    let cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(&config)).await.unwrap();
    let args = ApiArgs { api: Some(format!("http://{api_addr}")), token: Some(TOKEN.into()) };
    let (channel, bearer) = connect(&args, None).await.unwrap();
    let mut calls = CallsClient::with_interceptor(channel.clone(), bearer.clone());

    let alice = SimplePeer::new("alice").await.unwrap();
    let call = alice.call(&format!("sip:bob@{}", cm.sip[0])).await.unwrap();
    call.wait_established(WAIT).await.unwrap();
    let bobs = calls_up(&bob, 1).await;
    let mut players = vec![play(call.clone(), ALICE), play(bobs[0].clone(), BOB)];
    let session = {
        let calls = calls.clone();
        let id = call.id().as_str().to_owned();
        let find = move || {
            let (mut calls, id) = (calls.clone(), id.clone());
            async move {
                let list = calls.list(ListCallsRequest {}).await.unwrap().into_inner().calls;
                list.into_iter().find(|c| c.answered && c.call_ids.first() == Some(&id)).map(|c| c.session_id)
            }
        };
        testkit::wait::until_async("alice's call listed as answered", WAIT, || async { find().await.is_some() }).await;
        find().await.unwrap()
    };
    let request = || CallRequest { session_id: session.clone() };

    // Refused: a transfer to something that is not a SIP URI, a call that is not there.
    let bad = TransferRequest { session_id: session.clone(), target: "carol".into() };
    assert_eq!(calls.transfer(bad).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let nobody = CallRequest { session_id: "0123456789abcdef".into() };
    assert_eq!(calls.hangup(nobody).await.unwrap_err().code(), tonic::Code::NotFound);

    // Recorded from now on: the file appears in the recordings directory.
    calls.start_recording(request()).await.unwrap();
    let wav = recordings.path().join(format!("{session}.wav"));
    let present = wav.clone();
    tokio::task::spawn_blocking(move || testkit::wait::blocking_until("the recording's file", WAIT, || present.exists()))
        .await
        .unwrap();

    // Transferred to carol: bob is let go, alice and carol hear each other.
    let to_carol = TransferRequest { session_id: session.clone(), target: carol.uri().to_string() };
    calls.transfer(to_carol).await.unwrap();
    calls_up(&bob, 0).await;
    let carols = calls_up(&carol, 1).await;
    carols[0].wait_established(WAIT).await.unwrap();
    players.push(play(carols[0].clone(), BOB));
    assert_eq!(alice.active_calls().len(), 1, "alice's call goes on");
    assert_eq!(hear_now(std::slice::from_ref(&call), BOB).await, [true], "alice hears carol");
    assert_eq!(hear_now(&carols, ALICE).await, [true], "carol hears alice");

    // Hung up: both ends.
    calls.stop_recording(request()).await.unwrap();
    calls.hangup(request()).await.unwrap();
    call.wait_ended(WAIT).await.unwrap();
    calls_up(&carol, 0).await;
    for p in players.drain(..) {
        p.await.unwrap();
    }

    // One record: alice's leg, bob's, carol's; the recording.
    let all = records(CdrsClient::with_interceptor(channel, bearer), 1).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let cdr = all.into_iter().next().unwrap();
    let legs: Vec<(&str, bool)> = cdr.legs.iter().map(|l| (l.role.as_str(), l.answered)).collect();
    assert_eq!(legs, [("caller", true), ("callee", true), ("callee", true)], "{cdr:?}");
    assert!(cdr.legs[1].uri.contains("bob") && cdr.legs[2].uri.contains("carol"), "{cdr:?}");
    assert_eq!((cdr.disposition.as_str(), cdr.recording.as_str()), ("answered", format!("{session}.wav").as_str()));
    assert!(wav.metadata().unwrap().len() > 44, "the recording has audio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_clicks_to_call_an_agent_then_a_number() {
    let accepting = |name: &'static str| SimplePeer::builder(name).incoming_call_policy(IncomingCallPolicy::AcceptAll).build();
    let (agent, bob) = (accepting("agent").await.unwrap(), accepting("bob").await.unwrap());
    let api_addr = free_local_addr();
    let config = format!(
        "[api]\nlisten = \"{api_addr}\"\ntokens = [\"{TOKEN}\"]\n[[queues]]\nname = \"help\"\n\
         [[agents]]\nuser = \"agent\"\ncontact = \"{}\"\nqueues = [\"help\"]\n[[routes]]\nuser = '^bob$'\ntarget = \"{}\"\n",
        agent.uri(),
        bob.uri()
    );
    let _cm = tokio::task::spawn_blocking(move || Callmesh::all_in_one(&config)).await.unwrap();
    let args = ApiArgs { api: Some(format!("http://{api_addr}")), token: Some(TOKEN.into()) };
    let (channel, bearer) = connect(&args, None).await.unwrap();
    let mut calls = CallsClient::with_interceptor(channel.clone(), bearer.clone());

    // Refused: an agent that is not one, a number the dial plan does not know.
    let nobody = OriginateRequest { agent: "nobody".into(), number: "bob".into(), ..Default::default() };
    assert_eq!(calls.originate(nobody).await.unwrap_err().code(), tonic::Code::NotFound);
    let unrouted = OriginateRequest { agent: "agent".into(), number: "carol".into(), ..Default::default() };
    assert_eq!(calls.originate(unrouted).await.unwrap_err().code(), tonic::Code::NotFound);

    // The agent's phone rings first (showing whom it will reach); once it answers, bob's.
    let request = OriginateRequest { agent: "agent".into(), number: "bob".into(), ..Default::default() };
    let session = calls.originate(request).await.unwrap().into_inner().session_id;
    let agents = calls_up(&agent, 1).await;
    assert!(agents[0].remote_uri().contains("bob"), "the agent sees {}", agents[0].remote_uri());
    let bobs = calls_up(&bob, 1).await;
    for c in agents.iter().chain(&bobs) {
        c.wait_established(WAIT).await.unwrap();
    }
    let players = [play(agents[0].clone(), ALICE), play(bobs[0].clone(), BOB)];
    assert_eq!(hear_now(&agents, BOB).await, [true], "the agent hears bob");
    assert_eq!(hear_now(&bobs, ALICE).await, [true], "bob hears the agent");

    // Bob hangs up: the agent's call ends with his.
    bobs[0].hangup().await.unwrap();
    calls_up(&agent, 0).await;
    for p in players {
        p.await.unwrap();
    }
    let records = records(CdrsClient::with_interceptor(channel, bearer), 2).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let first = records.iter().find(|c| c.session_id == session).expect("the agent leg's record");
    let second = records.iter().find(|c| c.session_id != session).unwrap();
    assert_eq!((first.kind.as_str(), first.agent.as_str(), first.disposition.as_str()), ("originate", "agent", "answered"));
    assert_eq!((second.kind.as_str(), second.disposition.as_str()), ("originate", "answered"));
    assert_eq!((first.caller_session.as_str(), second.caller_session.as_str()), (second.session_id.as_str(), session.as_str()));
    assert!(second.callee.contains("bob"), "{second:?}");
}
