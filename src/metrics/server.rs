//! `--metrics-addr 127.0.0.1:PORT`: serves the totals in the Prometheus text format
//! (`GET /metrics`) from a tiny HTTP/1.0 responder on the tokio runtime.
//!
//! Design note: one request per connection, answered from a fresh snapshot and closed; a
//! handful of scrapers at most, so at most 8 connections are answered at once and each gets
//! 10 s. The listener is bound before mounting (a taken port fails the mount, not the
//! metrics), and served until the shutdown token is cancelled: then no connection is
//! accepted any more, and answers in progress get a moment to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::exposition::{render_prometheus, CONTENT_TYPE};
use super::registry::Metrics;

/// Connections answered at once.
const SLOTS: usize = 8;
/// Time a client gets to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time answers in progress get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Checks a `--metrics-addr` and binds it. Non-loopback addresses are refused unless
/// `allow_remote`: the endpoint has no authentication, and object traffic patterns can be
/// sensitive.
pub fn bind(addr: SocketAddr, allow_remote: bool) -> Result<std::net::TcpListener, String> {
    if !addr.ip().is_loopback() && !allow_remote {
        return Err(format!(
            "refusing to serve metrics on {addr}, which is not a loopback address: use \
             127.0.0.1:PORT, or pass --metrics-allow-remote to expose them to the network"
        ));
    }
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on --metrics-addr {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot listen on --metrics-addr {addr}: {e}"))?;
    Ok(listener)
}

/// Serves `GET /metrics` (and `/`) on `listener` until `shutdown` is cancelled. Must be
/// spawned on a tokio runtime.
pub async fn serve(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let addr = listener.local_addr().ok();
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!("metrics endpoint disabled: {e}");
            return;
        }
    };
    info!(addr = ?addr, "serving Prometheus metrics at http://{}/metrics", addr.map(|a| a.to_string()).unwrap_or_default());
    let slots = Arc::new(tokio::sync::Semaphore::new(SLOTS));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished answers, so the set only holds the ones in progress.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                debug!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // More connections than slots wait for one.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let metrics = metrics.clone();
        connections.spawn(async move {
            let _permit = permit;
            if let Err(e) = tokio::time::timeout(CLIENT_TIMEOUT, answer(stream, &metrics)).await {
                debug!(%peer, "metrics endpoint: client too slow: {e}");
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        debug!(
            "metrics endpoint: cut {} slow connections",
            connections.len()
        );
    }
    // Dropping the set aborts what is left.
    debug!("metrics endpoint stopped");
}

async fn answer(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 16 << 10 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics" | "/") => (
            "200 OK",
            CONTENT_TYPE,
            render_prometheus(&metrics.snapshot()),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: metrics are at /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD are supported\n".to_string(),
        ),
    };
    let mut response = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback_addresses() {
        let err = bind("0.0.0.0:0".parse().unwrap(), false).unwrap_err();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(bind("127.0.0.1:0".parse().unwrap(), false).is_ok());
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn answers_until_shut_down() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new(&[]));
        let server = tokio::spawn(serve(listener, metrics, shutdown.clone()));

        let response = get(addr, "/metrics").await;
        assert!(response.starts_with("HTTP/1.0 200 OK\r\n"), "{response}");
        assert!(response.contains(&format!("Content-Type: {CONTENT_TYPE}\r\n")));
        assert!(response.contains("# TYPE s3mount_requests_total counter\n"));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.0 404 "));

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server stops once cancelled")
            .expect("the server does not panic");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the port is closed after shutdown"
        );
    }
}
