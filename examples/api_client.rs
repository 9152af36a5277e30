//! An integrator's client of the Callmesh API (gRPC, package `callmesh.v1`): logs an agent
//! in, follows the event feed, and places a call for it — the agent's phone rings, then,
//! once it answers, the number's — and exits when that call has ended, printing its record.
//!
//! ```text
//! cargo run --example api_client -- http://127.0.0.1:9070 <token> <agent> <number>
//! ```
//!
//! (`callmesh` prints a token at start when `api.tokens` sets none.)

use contracts::agents_client::AgentsClient;
use contracts::calls_client::CallsClient;
use contracts::events_client::EventsClient;
use contracts::{AgentStatus, OriginateRequest, SetAgentStatusRequest, SubscribeRequest, call_notice, event};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [api, token, agent, number] =
        <[String; 4]>::try_from(args).map_err(|_| "usage: api_client <api url> <token> <agent> <number>")?;
    let channel = Channel::from_shared(api)?.connect().await?;
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse()?;
    let auth = move |mut request: tonic::Request<()>| {
        request.metadata_mut().insert("authorization", bearer.clone());
        Ok(request)
    };

    // The agent logs in.
    let mut agents = AgentsClient::with_interceptor(channel.clone(), auth.clone());
    let login = SetAgentStatusRequest { agent: agent.clone(), status: AgentStatus::Available as i32 };
    agents.set_status(login).await?;
    println!("{agent} logged in");

    // Events from now on (subscribed before the call is placed, so none is missed).
    let mut events = EventsClient::with_interceptor(channel.clone(), auth.clone());
    let subscribe = SubscribeRequest { from_sequence: 0, kinds: vec!["call".into(), "agent".into()] };
    let mut feed = events.subscribe(subscribe).await?.into_inner();

    // Click-to-call: the agent first, then the number.
    let mut calls = CallsClient::with_interceptor(channel, auth);
    let originate = OriginateRequest { agent: agent.clone(), number: number.clone(), ..Default::default() };
    let session = calls.originate(originate).await?.into_inner().session_id;
    println!("placed {session}: ringing {agent}, then {number}");

    // Until both legs of the call have ended.
    let mut ended = 0;
    while let Some(e) = feed.message().await? {
        let Some(event::Event::Call(notice)) = e.event else { continue };
        match notice.notice {
            Some(call_notice::Notice::Started(s)) => {
                println!("#{} {} started: {} -> {}", e.sequence, notice.session_id, s.caller, s.callee)
            }
            Some(call_notice::Notice::Answered(a)) => println!("#{} {} answered by {}", e.sequence, notice.session_id, a.by),
            Some(call_notice::Notice::Ended(cdr)) if notice.session_id == session || cdr.caller_session == session => {
                println!(
                    "#{} {} ended: {} ({}), {} ms",
                    e.sequence,
                    cdr.session_id,
                    cdr.disposition,
                    cdr.hangup_by,
                    cdr.end_ms - cdr.start_ms
                );
                ended += 1;
                if ended == 2 {
                    break;
                }
            }
            _ => {}
        }
    }
    println!("done");
    Ok(())
}
