//! One call is one trace across processes: a four-process cluster (edge, router, session,
//! media) on a real nats-server exports its spans over OTLP/HTTP to a receiver in this test,
//! which decodes them with the OpenTelemetry protobuf types. One SIPp call must give one
//! trace id with spans from every role, each process's spans children of the one before,
//! and each process named by its role and node id. The gRPC protocol is chosen by
//! `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`: the exporter then speaks HTTP/2 to the endpoint.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Callmesh;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use testkit::ports::free_local_addr;
use testkit::sipp::Sipp;

/// A span as received: ids in hex, its process's service name and instance id.
#[derive(Debug, Clone)]
struct Received {
    trace: String,
    span: String,
    parent: String,
    name: String,
    service: String,
    instance: String,
}

/// An OTLP/HTTP trace receiver on loopback: `POST /v1/traces` with a protobuf body.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let store = spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let store = store.clone();
                std::thread::spawn(move || serve(stream, &store));
            }
        });
        Receiver { addr, spans }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

/// Requests on one connection (HTTP/1.1 keep-alive), each body an export request.
fn serve(stream: TcpStream, store: &Mutex<Vec<Received>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut chunked) = (0, false);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            chunked |= h.starts_with("transfer-encoding:") && h.contains("chunked");
        }
        let body = if chunked { read_chunked(&mut reader) } else { read_exact(&mut reader, length) };
        let Some(body) = body else { return };
        if line.starts_with("POST /v1/traces")
            && let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice())
        {
            store.lock().unwrap().extend(flatten(request));
        }
        let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n");
    }
}

fn read_exact(reader: &mut impl Read, n: usize) -> Option<Vec<u8>> {
    let mut body = vec![0; n];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        let chunk = read_exact(reader, n + 2)?;
        if n == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

fn flatten(request: ExportTraceServiceRequest) -> Vec<Received> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let attr = |key: &str| {
            resource_spans.resource.as_ref().and_then(|r| r.attributes.iter().find(|a| a.key == key)).and_then(|a| {
                match a.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                }
            })
        };
        let (service, instance) = (attr("service.name").unwrap_or_default(), attr("service.instance.id").unwrap_or_default());
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(Received {
                    trace: hex::encode(&span.trace_id),
                    span: hex::encode(&span.span_id),
                    parent: hex::encode(&span.parent_span_id),
                    name: span.name,
                    service: service.clone(),
                    instance: instance.clone(),
                });
            }
        }
    }
    out
}

const ROLES: [&str; 4] = ["edge", "router", "session", "media"];

/// A trace id with spans from every role, if one has arrived.
fn complete_trace(spans: &[Received]) -> Option<String> {
    let mut services: HashMap<&str, HashSet<&str>> = HashMap::new();
    for s in spans {
        services.entry(&s.trace).or_default().insert(&s.service);
    }
    services
        .into_iter()
        .find(|(_, s)| ROLES.iter().all(|r| s.contains(format!("callmesh-{r}").as_str())))
        .map(|(t, _)| t.to_owned())
}

#[test]
fn one_call_is_one_trace_across_edge_router_session_and_media() {
    let receiver = Receiver::start();
    let callee = free_local_addr();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{}", receiver.addr)),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test".to_owned()),
    ];
    let cm = Callmesh::one_per_role(&format!("[[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{callee}\"\n"), &env);
    let uas = Sipp::builtin("uas").local(callee).calls(1).timeout(Duration::from_secs(30)).spawn().unwrap();
    Sipp::builtin("uac").remote(cm.sip[0]).local(free_local_addr()).calls(1).dial("1000").run().unwrap().assert_clean(1);
    uas.finish().unwrap().assert_clean(1);

    let deadline = Instant::now() + Duration::from_secs(20);
    let trace = loop {
        if let Some(t) = complete_trace(&receiver.spans()) {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "no trace with spans of every role within 20 s: {:#?}\n{}",
            receiver.spans(),
            cm.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let spans: Vec<Received> = receiver.spans().into_iter().filter(|s| s.trace == trace).collect();
    let of =
        |role: &str| -> Vec<Received> { spans.iter().filter(|s| s.service == format!("callmesh-{role}")).cloned().collect() };
    // Each process names itself: its role, and its node id as the instance.
    for role in ROLES {
        assert!(of(role).iter().all(|s| s.instance == format!("{role}-0")), "{role}: {spans:#?}");
    }
    // Each hop's span is a child of a span of the process before it.
    let ids = |role: &str| of(role).into_iter().map(|s| s.span).collect::<HashSet<_>>();
    let named = |role: &str, name: &str| of(role).into_iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let new_call = named("edge", "edge.new_call").pop().expect("the edge's span for the INVITE");
    assert!(new_call.parent.is_empty(), "the INVITE starts the trace: {new_call:?}");
    let route = named("router", "router.route").pop().expect("the router's span");
    assert_eq!(route.parent, new_call.span, "router under edge");
    let call = named("session", "session.call").pop().expect("the session's span");
    assert_eq!(call.parent, route.span, "session under router");
    let session = ids("session");
    assert!(named("media", "media.allocate").iter().any(|s| session.contains(&s.parent)), "media under session: {spans:#?}");
    assert!(named("edge", "edge.command").iter().any(|s| session.contains(&s.parent)), "edge commands under session");
    // One call, one trace: no other trace has a router or session span.
    let others: Vec<Received> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace != trace && (s.service == "callmesh-router" || s.service == "callmesh-session"))
        .collect();
    assert!(others.is_empty(), "spans of the call outside its trace: {others:?}");
}

#[test]
fn the_grpc_protocol_speaks_http2_to_the_endpoint() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{endpoint}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ];
    let callee = free_local_addr();
    let cm = Callmesh::all_in_one_with(&format!("[[routes]]\nuser = '^1'\ntarget = \"sip:${{user}}@{callee}\"\n"), &env);
    let uas = Sipp::builtin("uas").local(callee).calls(1).timeout(Duration::from_secs(30)).spawn().unwrap();
    Sipp::builtin("uac").remote(cm.sip[0]).local(free_local_addr()).calls(1).dial("1000").run().unwrap().assert_clean(1);
    uas.finish().unwrap().assert_clean(1);
    listener.set_nonblocking(false).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut preface = [0u8; 24];
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = stream.read_exact(&mut preface);
        let _ = tx.send(preface);
    });
    let preface = rx.recv_timeout(Duration::from_secs(20)).expect("the exporter connects within 20 s");
    assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    drop(cm);
}
