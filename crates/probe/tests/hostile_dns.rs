//! Hostile DNS answers from fake servers on loopback (unit-level fixtures:
//! the real-server tests are the lab scenarios). Each must end as a recorded
//! error for that query — never a panic, never a hang.

use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use v6scope_model::{ErrorKind, Transport};
use v6scope_probe::dns::{Resolver, chase, exchange, parse_name};
use v6scope_probe::policy::AddressPolicy;

const LIMIT: Duration = Duration::from_millis(500);

/// A UDP server that answers each query with whatever `reply` makes of it.
async fn udp_server(reply: impl Fn(&Message) -> Vec<Vec<u8>> + Send + 'static) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            for datagram in reply(&query) {
                let _ = socket.send_to(&datagram, peer).await;
            }
        }
    });
    addr
}

fn response_to(query: &Message) -> Message {
    let mut response = Message::response(query.metadata.id, OpCode::Query);
    response.metadata.recursion_available = true;
    response.add_queries(query.queries.clone());
    response
}

#[tokio::test]
async fn garbage_and_spoofed_answers_are_ignored_then_the_real_one_taken() {
    let server = udp_server(|q| {
        let mut wrong_id = response_to(q);
        wrong_id.metadata.id = q.metadata.id.wrapping_add(1);
        let mut real = response_to(q);
        real.add_answer(Record::from_rdata(
            q.queries[0].name.clone(),
            60,
            RData::A(A::new(192, 0, 2, 7)),
        ));
        vec![
            b"\xff\x00garbage".to_vec(),
            wrong_id.to_vec().unwrap(),
            real.to_vec().unwrap(),
        ]
    })
    .await;
    let name = parse_name("spoof.test").unwrap();
    let answer = exchange(server, &name, RecordType::A, true, None, LIMIT, &AddressPolicy::open())
        .await
        .unwrap();
    assert_eq!(answer.message.answers.len(), 1);
}

#[tokio::test]
async fn only_garbage_is_a_timeout_within_the_limit() {
    let server = udp_server(|_| vec![vec![0u8; 3], vec![0xffu8; 600]]).await;
    let started = Instant::now();
    let e = exchange(
        server,
        &parse_name("junk.test").unwrap(),
        RecordType::A,
        true,
        None,
        LIMIT,
        &AddressPolicy::open(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(started.elapsed() < LIMIT * 3);
}

#[tokio::test]
async fn truncated_answer_falls_back_to_tcp_and_a_lying_length_is_an_error() {
    // UDP says "truncated"; the TCP side promises 65535 bytes and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut len = [0u8; 2];
            let _ = stream.read_exact(&mut len).await;
            let _ = stream.write_all(&[0xff, 0xff, 1, 2, 3]).await;
        }
    });
    let socket = UdpSocket::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = response_to(&query);
            r.metadata.truncation = true;
            let _ = socket.send_to(&r.to_vec().unwrap(), peer).await;
        }
    });
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let e = exchange(
        server,
        &parse_name("big.test").unwrap(),
        RecordType::TXT,
        true,
        None,
        LIMIT,
        &AddressPolicy::open(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Io | ErrorKind::Reset | ErrorKind::Timeout),
        "{e}"
    );
    // Forcing TCP gives the same recorded error.
    let e = exchange(
        server,
        &parse_name("big.test").unwrap(),
        RecordType::TXT,
        true,
        Some(Transport::Tcp),
        LIMIT,
        &AddressPolicy::open(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Io | ErrorKind::Reset | ErrorKind::Timeout),
        "{e}"
    );
}

#[tokio::test]
async fn oversize_answer_over_tcp_parses() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let len = stream.read_u16().await.unwrap() as usize;
            let mut buf = vec![0u8; len];
            stream.read_exact(&mut buf).await.unwrap();
            let query = Message::from_vec(&buf).unwrap();
            let mut r = response_to(&query);
            for i in 0..2000u32 {
                let octets = i.to_be_bytes();
                r.add_answer(Record::from_rdata(
                    query.queries[0].name.clone(),
                    60,
                    RData::A(A::new(10, octets[1], octets[2], octets[3])),
                ));
            }
            let bytes = r.to_vec().unwrap();
            let _ = stream.write_all(&(bytes.len() as u16).to_be_bytes()).await;
            let _ = stream.write_all(&bytes).await;
        }
    });
    let answer = exchange(
        server,
        &parse_name("many.test").unwrap(),
        RecordType::A,
        true,
        Some(Transport::Tcp),
        LIMIT,
        &AddressPolicy::open(),
    )
    .await
    .unwrap();
    assert_eq!(answer.message.answers.len(), 2000);
}

fn cname_server(
    next: impl Fn(&str) -> Vec<(String, String)> + Send + Sync + 'static,
) -> impl Fn(&Message) -> Vec<Vec<u8>> {
    move |q| {
        let mut r = response_to(q);
        let asked = q.queries[0].name.to_ascii();
        for (owner, target) in next(asked.trim_end_matches('.')) {
            r.add_answer(Record::from_rdata(
                Name::from_ascii(format!("{owner}.")).unwrap(),
                60,
                RData::CNAME(CNAME(Name::from_ascii(format!("{target}.")).unwrap())),
            ));
        }
        vec![r.to_vec().unwrap()]
    }
}

#[tokio::test]
async fn cname_loop_is_an_error_for_that_name() {
    let server = udp_server(cname_server(|_| {
        vec![("a.test".into(), "b.test".into()), ("b.test".into(), "a.test".into())]
    }))
    .await;
    let resolver = Resolver::new(vec![server], LIMIT, 1, None);
    let e = chase(&resolver, &parse_name("a.test").unwrap(), RecordType::AAAA)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::CnameLoop, "{e}");
}

#[tokio::test]
async fn cname_chain_over_ten_hops_is_an_error() {
    // Each answer moves the chain on by one hop: h0 -> h1 -> h2 -> ...
    let server = udp_server(cname_server(|asked| {
        let n: u32 = asked
            .trim_start_matches('h')
            .trim_end_matches(".test")
            .parse()
            .unwrap_or(0);
        vec![(format!("h{n}.test"), format!("h{}.test", n + 1))]
    }))
    .await;
    let resolver = Resolver::new(vec![server], LIMIT, 1, None);
    let e = chase(&resolver, &parse_name("h0.test").unwrap(), RecordType::A)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::CnameChainTooLong, "{e}");
}

#[tokio::test]
async fn silent_resolver_times_out_with_bounded_retries() {
    let server = udp_server(|_| Vec::new()).await;
    let resolver = Resolver::new(vec![server], Duration::from_millis(200), 2, None);
    let started = Instant::now();
    let e = resolver
        .query(&parse_name("quiet.test").unwrap(), RecordType::A)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
}
