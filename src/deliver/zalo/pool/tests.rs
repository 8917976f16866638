//! The pool against minimal servers: long answers read whole, connections reused and closed
//! when idle too long, a connection the server closed while idle replaced before anything is
//! written, and a request read but not answered reported as possibly sent, never repeated.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

#[test]
fn requests_need_an_absolute_url() {
    let uri: Uri = "http://127.0.0.1:8080/v3.0/oa/message/cs?x=1"
        .parse()
        .unwrap();
    let Ok((s, a, p)) = split(&uri) else {
        panic!("an absolute URL")
    };
    assert_eq!((s.as_str(), a.as_str()), ("http", "127.0.0.1:8080"));
    assert_eq!(p.as_str(), "/v3.0/oa/message/cs?x=1");
    let relative: Uri = "/v3.0/oa/message/cs".parse().unwrap();
    assert!(matches!(split(&relative), Err(Failure::NotSent(_))));
}

/// What the test server does once it has read a request.
#[derive(Clone, Copy)]
enum Then {
    /// Answers and keeps the connection open.
    Answer,
    /// Answers, then closes the connection 50 ms later (a server's idle timeout).
    AnswerAndClose,
    /// Answers with `connection: close` and closes at once.
    AnswerOnce,
    /// Closes without answering.
    Hang,
    /// Answers with a long head and a long body (see `long_answer`), and keeps the connection.
    AnswerLong,
}

/// An answer with 12 KiB of headers (what a CDN or gateway in front of an API can add) and a
/// 40 KiB body (a page of followers' details), as its head and its body.
fn long_answer() -> (String, String) {
    let mut head = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..96 {
        head.push_str(&format!("x-gateway-{i:02}: {}\r\n", "v".repeat(110)));
    }
    let body = format!("{{\"error\":0,\"data\":\"{}\"}}", "đ".repeat(20_000));
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    (head, body)
}

/// A minimal HTTP/1.1 server counting connections and requests.
struct Server {
    url: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn server(then: Then) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v3.0/oa/message/cs",
        listener.local_addr().unwrap()
    );
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            tokio::spawn(async move {
                while read_request(&mut socket).await {
                    r.fetch_add(1, Ordering::SeqCst);
                    if matches!(then, Then::Hang) {
                        return;
                    }
                    let answer = match then {
                        Then::AnswerOnce => {
                            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
                                .to_vec()
                        }
                        Then::AnswerLong => {
                            let (head, body) = long_answer();
                            (head + &body).into_bytes()
                        }
                        _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(),
                    };
                    if socket.write_all(&answer).await.is_err() || matches!(then, Then::AnswerOnce)
                    {
                        return;
                    }
                    if matches!(then, Then::AnswerAndClose) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        return;
                    }
                }
            });
        }
    });
    Server {
        url,
        connections,
        requests,
    }
}

impl Server {
    /// Requests read and connections accepted so far.
    fn counts(&self) -> (usize, usize) {
        (
            self.requests.load(Ordering::SeqCst),
            self.connections.load(Ordering::SeqCst),
        )
    }
}

/// Reads one request (head and `content-length` body); false at the end of the connection.
async fn read_request(socket: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => return false,
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).await.is_ok()
}

fn post(url: &str) -> Req {
    Box::new(
        Request::post(url)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap(),
    )
}

fn pool() -> Arc<Pool> {
    Pool::new(connector().unwrap(), 8, Duration::from_secs(90))
}

/// A POST that must be answered.
async fn answered(pool: &Arc<Pool>, url: &str) -> Answer {
    match pool.exchange(post(url)).await {
        Ok(answer) => answer,
        Err(e) => panic!("an answer, not {e:?}"),
    }
}

#[tokio::test]
async fn long_heads_and_bodies_are_read_whole() {
    // A read buffer sized for the simulator's short answers (an exact 1 KiB, tried for speed)
    // refused any answer whose head did not fit in it.
    let s = server(Then::AnswerLong).await;
    let pool = pool();
    let (_, expected) = long_answer();
    for _ in 0..2 {
        let answer = answered(&pool, &s.url).await;
        assert_eq!(answer.head.headers.len(), 97);
        assert_eq!(answer.head.headers["x-gateway-95"].len(), 110);
        assert!(answer.body == expected.as_bytes(), "the whole body");
    }
    assert_eq!(s.counts(), (2, 1));
}

#[tokio::test]
async fn a_kept_alive_connection_serves_the_next_request() {
    let s = server(Then::Answer).await;
    let pool = pool();
    for _ in 0..3 {
        let answer = answered(&pool, &s.url).await;
        assert_eq!(
            (answer.head.status.as_u16(), &answer.body[..]),
            (200, &b"ok"[..])
        );
    }
    assert_eq!(s.counts(), (3, 1), "(requests, connections)");
}

#[tokio::test]
async fn an_idle_connection_the_server_closed_is_replaced_not_counted_as_sent() {
    let s = server(Then::AnswerAndClose).await;
    let pool = pool();
    assert!(pool.exchange(post(&s.url)).await.is_ok());
    // The server has closed the pooled connection by now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = pool.exchange(post(&s.url)).await;
    assert!(second.is_ok(), "{second:?}", second = second.err());
    assert_eq!(s.counts(), (2, 2), "(requests, connections)");
}

#[tokio::test]
async fn an_answer_followed_by_a_close_is_read_whole_and_the_connection_not_kept() {
    let s = server(Then::AnswerOnce).await;
    let pool = pool();
    for _ in 0..2 {
        let answer = answered(&pool, &s.url).await;
        assert_eq!(&answer.body[..], b"ok");
    }
    assert_eq!(s.counts(), (2, 2), "(requests, connections)");
}

#[tokio::test]
async fn a_request_read_but_not_answered_may_have_been_sent_and_is_not_repeated() {
    let s = server(Then::Hang).await;
    let pool = pool();
    let failure = pool.exchange(post(&s.url)).await.err();
    assert!(
        matches!(failure, Some(Failure::MaybeSent(_))),
        "{failure:?}"
    );
    // Not tried again on another connection: it may have been acted on.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.counts(), (1, 1), "(requests, connections)");
}

#[tokio::test]
async fn connections_idle_past_the_timeout_are_closed() {
    let s = server(Then::Answer).await;
    let pool = Pool::new(connector().unwrap(), 8, Duration::from_millis(100));
    assert!(pool.exchange(post(&s.url)).await.is_ok());
    let idle = |pool: &Pool| -> usize {
        let origins = pool.origins.lock().unwrap();
        origins.iter().map(|o| o.idle.len()).sum()
    };
    assert_eq!(idle(&pool), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        idle(&pool),
        0,
        "the reaper closes it without another request"
    );
}

#[tokio::test]
async fn a_refused_connection_was_not_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    drop(listener);
    let failure = pool().exchange(post(&url)).await.err();
    assert!(matches!(failure, Some(Failure::NotSent(_))), "{failure:?}");
}
