//! Listening sockets for loa's HTTP servers: the daemon's (webhooks, confirm pages, dashboard)
//! and the Zalo simulator's.
//!
//! tokio's `TcpListener::bind` asks for an accept queue of 128, like the standard library. A
//! client that opens its connections all at once overflows it: a fan-out opens one connection
//! per message in flight (256 by default), and whatever does not fit in the queue has its SYN
//! dropped and retried by the kernel one second later. Under `bench/zalo.py` one fan-out in
//! three waited that second before its first answer. Zalo's servers delivering a burst of
//! webhooks to the daemon meet the same queue. The kernel caps the figure asked for at
//! `net.core.somaxconn` (4,096 on current kernels).

use std::io;

use tokio::net::{TcpListener, TcpSocket, ToSocketAddrs};

/// Connections the kernel may hold for a listener before the server accepts them.
pub const BACKLOG: u32 = 1024;

/// Binds the first address `addr` resolves to that can be bound, with a [`BACKLOG`]-deep accept
/// queue and `SO_REUSEADDR` set (as tokio does), so a restarted server can listen again at once.
pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        #[cfg(not(windows))]
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::future::join_all;

    use super::*;

    /// 300 clients connect at once to a server that has not accepted any of them yet: each
    /// connection completes (it waits in the accept queue) instead of having its SYN dropped.
    /// With a queue of 128, connections beyond 129 stay unanswered and the timeout fails the test.
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_queue() {
        let listener = bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let connects = (0..300).map(|_| tokio::net::TcpStream::connect(addr));
        let all = tokio::time::timeout(Duration::from_secs(5), join_all(connects))
            .await
            .expect("every connection completes without a dropped SYN");
        assert!(all.iter().all(|c| c.is_ok()));
        for _ in 0..300 {
            listener.accept().await.expect("accepted");
        }
    }

    #[tokio::test]
    async fn an_address_in_use_is_an_error() {
        let first = bind("127.0.0.1:0").await.expect("bind");
        let addr = first.local_addr().expect("address");
        assert!(bind(addr).await.is_err());
    }

    #[tokio::test]
    async fn a_name_resolves() {
        let listener = bind("localhost:0").await.expect("bind");
        assert!(listener.local_addr().expect("address").ip().is_loopback());
    }
}
