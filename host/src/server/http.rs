//! Serving the API on a TCP listener with the limits a public server needs, which `axum::serve`
//! does not set: a cap on open connections and one per client address (past them a connection
//! gets a 503 and is closed at once, so a crowd of idle or slow clients cannot exhaust the
//! process's file descriptors), and a header-read timeout that is also the idle timeout of a
//! kept-alive connection (a client that sends a partial request, or nothing, is cut off).
//! Shutdown stops accepting, lets requests in flight finish, and gives up on connections still
//! open after a grace period.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::Service as _;

/// Connection limits.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub connections_max: usize,
    /// Connections open at once from one client address.
    pub connections_per_client_max: usize,
    /// Time to receive a request's headers, and the most a kept-alive connection may idle.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for open connections.
    pub shutdown_grace: Duration,
}

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One connection's place in the per-client count, given back on drop.
struct ClientSlot {
    ip: IpAddr,
    counts: Counts,
}

impl ClientSlot {
    fn take(counts: &Counts, ip: IpAddr, cap: usize) -> Option<ClientSlot> {
        let mut m = counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = m.entry(ip).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            ip,
            counts: counts.clone(),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut m = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Answers 503 on a connection over a cap and closes it (best effort: never blocks).
fn refuse(stream: TcpStream, why: &str) {
    let body =
        serde_json::json!({ "error": { "code": "overloaded", "message": format!("{why}; retry later") } }).to_string();
    let resp = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(resp.as_bytes());
}

/// Serves `app` on `listener` until `shutdown` completes; `on_drain` runs once accepting has
/// stopped (it ends what would keep connections open, such as live streams).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    on_drain: impl FnOnce(),
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(256);
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let per_client: Counts = Counts::default();
    let graceful = GracefulShutdown::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer): (TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors (or another transient error): back off briefly.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            refuse(
                stream,
                "the server has as many connections open as it takes (connections_max)",
            );
            continue;
        };
        let Some(slot) = ClientSlot::take(&per_client, peer.ip(), limits.connections_per_client_max) else {
            refuse(
                stream,
                "this address has as many connections open as one client may (connections_per_client_max)",
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = app.clone();
        let service = service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(req)
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tasks.spawn(async move {
            let _held = (permit, slot);
            if let Err(e) = conn.await {
                if e.is_timeout() {
                    tracing::debug!("{peer}: closed after the header-read or idle timeout");
                } else {
                    tracing::debug!("{peer}: {e}");
                }
            }
        });
    }
    drop(listener);
    on_drain();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("shutdown: closing {} connections still open after the grace period", tasks.len());
        }
    }
    tasks.shutdown().await;
}
