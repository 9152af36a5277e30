//! The tokio endpoint over real sockets: TCP framing across reads, keep-alive answers,
//! refusal of unframeable messages, idle close, connection reuse; UDP survives garbage.

use std::net::SocketAddr;
use std::time::Duration;

use sip::endpoint::{Endpoint, EndpointConfig};
use sip::message::{Builder, Message};
use sip::transaction::Event;
use sip::transport::TcpConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// An endpoint whose transaction user answers every request with 200.
async fn answering_endpoint(tcp: TcpConfig) -> SocketAddr {
    let mut config = EndpointConfig::udp_and_tcp("127.0.0.1:0".parse().unwrap());
    config.tcp_settings = tcp;
    let mut endpoint = Endpoint::bind(config).await.unwrap();
    let addr = endpoint.handle().local_addr(sip::transaction::TransportKind::Tcp).unwrap();
    tokio::spawn(async move {
        let handle = endpoint.handle();
        while let Some(event) = endpoint.next_event().await {
            if let Event::Request { tx, request, .. } = event {
                let _ = handle.respond(tx, Builder::response_to(&request, 200, "", Some("t")).build().unwrap());
            }
        }
    });
    addr
}

fn options(branch: &str, transport: &str) -> String {
    format!(
        "OPTIONS sip:uas@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:1;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:uas@127.0.0.1>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Reads from `stream` until `n` complete messages arrived (framed like the endpoint does).
async fn read_messages(stream: &mut TcpStream, n: usize) -> Vec<Message> {
    let mut framer = sip::message::framing::StreamFramer::new();
    let mut out = Vec::new();
    while out.len() < n {
        let read = timeout(WAIT, stream.read_buf(framer.buffer_mut())).await.expect("waiting for a response").unwrap();
        assert!(read > 0, "connection closed after {} of {n} messages", out.len());
        while let Ok(Some(sip::message::framing::Frame::Message(m))) = framer.next_frame() {
            out.push(Message::parse_stream_message(m).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn requests_split_across_reads_are_framed_and_answered_on_the_same_connection() {
    let addr = answering_endpoint(TcpConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let first = options("split1", "TCP");
    for chunk in first.as_bytes().chunks(17) {
        stream.write_all(chunk).await.unwrap();
        stream.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    stream.write_all(options("split2", "TCP").as_bytes()).await.unwrap();
    let answers = read_messages(&mut stream, 2).await;
    let ids: Vec<_> = answers.iter().map(|m| (m.status(), m.call_id().unwrap().to_owned())).collect();
    assert_eq!(ids, [(Some(200), "split1".to_owned()), (Some(200), "split2".to_owned())]);
}

#[tokio::test]
async fn keepalive_ping_gets_a_pong() {
    let addr = answering_endpoint(TcpConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    timeout(WAIT, stream.read_exact(&mut pong)).await.expect("waiting for the pong").unwrap();
    assert_eq!(&pong, b"\r\n");
}

#[tokio::test]
async fn a_message_without_content_length_gets_400_then_the_connection_closes() {
    let addr = answering_endpoint(TcpConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(options("nocl", "TCP").replace("Content-Length: 0\r\n", "").as_bytes()).await.unwrap();
    let answer = read_messages(&mut stream, 1).await.remove(0);
    assert_eq!((answer.status(), answer.reason()), (Some(400), "Missing Content-Length"));
    let mut rest = Vec::new();
    let closed = timeout(WAIT, stream.read_to_end(&mut rest)).await.expect("waiting for the close");
    assert!(closed.is_ok() && rest.is_empty());
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let addr = answering_endpoint(TcpConfig { idle_timeout: Duration::from_millis(200), ..TcpConfig::default() }).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = timeout(WAIT, stream.read(&mut buf)).await.expect("the endpoint should close an idle connection").unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn udp_garbage_is_dropped_and_the_next_request_answered() {
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    config.tcp = None;
    let mut endpoint = Endpoint::bind(config).await.unwrap();
    let handle = endpoint.handle();
    let addr = handle.local_addr(sip::transaction::TransportKind::Udp).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(b"\x00\xffnot sip at all", addr).await.unwrap();
    let request = options("afterjunk", "UDP").replace("127.0.0.1:1;", &format!("{};rport;", client.local_addr().unwrap()));
    client.send_to(request.as_bytes(), addr).await.unwrap();
    let Some(Event::Request { tx, request, .. }) = endpoint.next_event_within(WAIT).await else { panic!("no request event") };
    handle.respond(tx, Builder::response_to(&request, 200, "", Some("x")).build().unwrap()).unwrap();
    let mut buf = vec![0u8; 2048];
    let (n, _) = timeout(WAIT, client.recv_from(&mut buf)).await.expect("waiting for the 200").unwrap();
    assert_eq!(Message::parse_datagram(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap().status(), Some(200));
    let stats = handle.stats().await.unwrap();
    assert_eq!((stats.transactions.messages_dropped, stats.udp_received), (1, 2));
}
