//! HTTP/1.1 keep-alive connections to the API, each driven by the request that uses it.
//!
//! hyper-util's pooled client runs every connection in a task of its own: each request then
//! crosses two tasks (its own and the connection's) over two channels, and boxes a future of a
//! few kilobytes. In a fan-out that is a hundred thousand times the same hop. Here a request
//! takes an idle connection (hyper's `client::conn::http1`), polls the connection itself while
//! it waits for its answer and its body, and puts it back: one task, woken once per answer.
//!
//! A connection taken from the pool may have been closed by the server while it sat idle. hyper
//! tells that apart from a failure after the request was written (the request comes back), so
//! such a request is tried again on another connection, and only a request that may have left
//! is reported as such.

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::http::{HeaderValue, Request, Uri, header, response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub(super) type Https = hyper_rustls::HttpsConnector<HttpConnector>;
type Io = hyper_rustls::MaybeHttpsStream<TokioIo<TcpStream>>;

/// TCP (5 s to connect, no Nagle) and TLS for `https` URLs: rustls with ring and the platform's
/// roots.
pub(super) fn connector() -> anyhow::Result<Https> {
    use rustls_platform_verifier::ConfigVerifierExt as _;
    // One process-wide rustls provider: ring (no C toolchain needed beyond cc, no aws-lc).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rustls::ClientConfig::with_platform_verifier()?;
    let mut tcp = HttpConnector::new();
    tcp.set_connect_timeout(Some(Duration::from_secs(5)));
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp))
}

/// A request on its way through the pool, boxed: each async layer between the channel and the
/// connection keeps its own slot for its argument, so a request held by value (256 bytes) took
/// that much again at every level of every send's future, and was copied into each.
pub(super) type Req = Box<Request<Full<Bytes>>>;

/// An answer read whole: status and headers, and the body.
pub(super) struct Answer {
    pub head: response::Parts,
    pub body: Bytes,
}

/// Why there is no answer.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing was written: no connection could be made, or the URL cannot be used.
    NotSent(String),
    /// The connection failed after the request may have been written.
    MaybeSent(String),
    /// The answer's body could not be read.
    Body(String),
}

/// An open connection: hyper's two halves, and since when it has been idle. `io` is dropped as
/// soon as it is done (closed by either side): that also fails whatever was handed to `send`.
struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    io: Option<http1::Connection<Io, Full<Bytes>>>,
    idle_since: Instant,
}

impl Conn {
    fn is_open(&self) -> bool {
        self.io.is_some() && !self.send.is_closed()
    }
}

/// The idle connections to one origin (scheme and authority), most recently used last.
struct Origin {
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
    // Boxed: a connection moves into each request that takes it and back, and hyper's state for
    // it is about 1.8 KB.
    #[allow(clippy::vec_box)]
    idle: Vec<Box<Conn>>,
}

pub(super) struct Pool {
    connector: Https,
    origins: Mutex<Vec<Origin>>,
    max_idle: usize,
    idle_timeout: Duration,
    reaper: std::sync::Once,
}

impl Pool {
    pub fn new(connector: Https, max_idle: usize, idle_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool {
            connector,
            origins: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
            reaper: std::sync::Once::new(),
        })
    }

    /// Sends `req` (an absolute URI) and reads the whole answer. The caller bounds the time.
    pub async fn exchange(self: &Arc<Self>, mut req: Req) -> Result<Answer, Failure> {
        let (scheme, authority, path) = split(req.uri())?;
        let (host, mut idle) = self.checkout(&scheme, &authority)?;
        // HTTP/1.1 wants the path alone on the request line and the authority in `Host`.
        *req.uri_mut() = Uri::from(path);
        req.headers_mut().insert(header::HOST, host);
        loop {
            let (mut conn, pooled) = match idle {
                Some(conn) => (conn, true),
                // Boxed: a connection is made rarely, and its future (TCP, TLS, handshake) was
                // most of this one's size.
                None => (Box::pin(self.connect(&scheme, &authority)).await?, false),
            };
            match drive(&mut conn, req).await {
                Ok(answer) => {
                    self.checkin(&scheme, &authority, conn);
                    return Ok(answer);
                }
                // The server closed the idle connection before anything was written: the
                // request is whole again, for another connection. A new connection that fails
                // so has not been reached at all.
                Err(Driven::NotSent(again, e)) => {
                    if !pooled {
                        return Err(Failure::NotSent(e));
                    }
                    req = again;
                    idle = self.checkout(&scheme, &authority)?.1;
                }
                Err(Driven::Failed(f)) => return Err(f),
            }
        }
    }

    /// The origin's `Host` header and its most recently used idle connection that is still
    /// open, if any, under one lock. The origin is added on its first request.
    fn checkout(
        &self,
        scheme: &Scheme,
        authority: &Authority,
    ) -> Result<(HeaderValue, Option<Box<Conn>>), Failure> {
        let mut origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
        let at = match origins
            .iter()
            .position(|o| o.scheme == *scheme && o.authority == *authority)
        {
            Some(at) => at,
            None => {
                origins.push(Origin {
                    scheme: scheme.clone(),
                    authority: authority.clone(),
                    host: host_header(scheme, authority)?,
                    idle: Vec::new(),
                });
                origins.len() - 1
            }
        };
        let origin = &mut origins[at];
        while let Some(conn) = origin.idle.pop() {
            if conn.is_open() && conn.idle_since.elapsed() < self.idle_timeout {
                return Ok((origin.host.clone(), Some(conn)));
            }
        }
        Ok((origin.host.clone(), None))
    }

    fn checkin(self: &Arc<Self>, scheme: &Scheme, authority: &Authority, mut conn: Box<Conn>) {
        if !conn.is_open() {
            return;
        }
        conn.idle_since = Instant::now();
        let mut origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = find(&mut origins, scheme, authority)
            && o.idle.len() < self.max_idle
        {
            o.idle.push(conn);
        }
        drop(origins);
        self.reaper.call_once(|| self.start_reaper());
    }

    /// Closes connections idle past the timeout, every half timeout while the pool exists, so
    /// that a quiet daemon does not hold connections the server has long closed.
    fn start_reaper(self: &Arc<Self>) {
        let weak: Weak<Pool> = Arc::downgrade(self);
        let every = (self.idle_timeout / 2).max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = weak.upgrade() else { break };
                pool.reap();
            }
        });
    }

    fn reap(&self) {
        let mut origins = self.origins.lock().unwrap_or_else(|p| p.into_inner());
        for o in origins.iter_mut() {
            o.idle
                .retain(|c| c.is_open() && c.idle_since.elapsed() < self.idle_timeout);
        }
    }

    /// A new connection (TCP, and TLS for `https`), handshaken for HTTP/1.1.
    async fn connect(&self, scheme: &Scheme, authority: &Authority) -> Result<Box<Conn>, Failure> {
        use tower_service::Service as _;
        let root = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| Failure::NotSent(e.to_string()))?;
        let mut connector = self.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| Failure::NotSent(e.to_string()))?;
        let io = connector
            .call(root)
            .await
            .map_err(|e| Failure::NotSent(e.to_string()))?;
        let (send, io) = http1::handshake(io)
            .await
            .map_err(|e| Failure::NotSent(e.to_string()))?;
        Ok(Box::new(Conn {
            send,
            io: Some(io),
            idle_since: Instant::now(),
        }))
    }
}

/// `Host`: the authority, without the scheme's default port.
fn host_header(scheme: &Scheme, authority: &Authority) -> Result<HeaderValue, Failure> {
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    let host = match authority.port_u16() {
        Some(port) if port != default_port => format!("{}:{port}", authority.host()),
        _ => authority.host().to_string(),
    };
    HeaderValue::from_str(&host).map_err(|_| Failure::NotSent(format!("bad host {authority}")))
}

fn find<'a>(
    origins: &'a mut [Origin],
    scheme: &Scheme,
    authority: &Authority,
) -> Option<&'a mut Origin> {
    origins
        .iter_mut()
        .find(|o| o.scheme == *scheme && o.authority == *authority)
}

fn split(uri: &Uri) -> Result<(Scheme, Authority, PathAndQuery), Failure> {
    match (uri.scheme(), uri.authority()) {
        (Some(s), Some(a)) => Ok((
            s.clone(),
            a.clone(),
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        )),
        _ => Err(Failure::NotSent(format!("not an absolute URL: {uri}"))),
    }
}

/// How one exchange on one connection ended, short of an answer.
enum Driven {
    /// The connection was closed before the request was written; here it is back.
    NotSent(Req, String),
    Failed(Failure),
}

/// Sends `req` on `conn` and reads the answer, polling the connection in this task meanwhile.
async fn drive(conn: &mut Conn, req: Req) -> Result<Answer, Driven> {
    let Conn { send, io, .. } = conn;
    let exchange = async move {
        if let Err(e) = poll_fn(|cx| send.poll_ready(cx)).await {
            return Err(Driven::NotSent(req, e.to_string()));
        }
        let resp: hyper::Response<Incoming> = match send.try_send_request(*req).await {
            Ok(resp) => resp,
            Err(mut e) => {
                return Err(match e.take_message() {
                    Some(req) => Driven::NotSent(Box::new(req), e.into_error().to_string()),
                    None => Driven::Failed(Failure::MaybeSent(e.into_error().to_string())),
                });
            }
        };
        let (head, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Driven::Failed(Failure::Body(e.to_string())))?
            .to_bytes();
        Ok(Answer { head, body })
    };
    let mut exchange = pin!(exchange);
    poll_fn(|cx| {
        // Once the connection's future is done it is dropped: a request still queued comes back
        // whole (not sent), one already written fails (it may have arrived).
        let mut poll_io = |cx: &mut std::task::Context<'_>| {
            if let Some(c) = io.as_mut()
                && Pin::new(c).poll(cx).is_ready()
            {
                *io = None;
            }
        };
        // The connection first (it may have news: an answer, or the server's close), then the
        // exchange, then the connection again to write what the exchange just handed it.
        poll_io(cx);
        let out = exchange.as_mut().poll(cx);
        if out.is_pending() {
            poll_io(cx);
        }
        out
    })
    .await
}
#[cfg(test)]
mod tests;
