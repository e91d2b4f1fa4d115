//! The daemons' HTTP side door: Prometheus text on `GET /metrics` and `ok` on `GET /healthz`.
//!
//! Hand-written (about a page) rather than pulling in hyper for two fixed GET routes: it reads
//! one request head of bounded size under a deadline, answers, and closes. Connections are
//! capped, and idle ones cannot starve the endpoint: when every slot is taken, a new
//! connection evicts the oldest one that has still not sent its request (a real scraper sends
//! it at once, so only idlers are ever old enough to go). An accept error (out of file
//! descriptors) pauses the loop instead of spinning it.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

/// Most scrapes served at once. Prometheus scrapes one at a time; 16 leaves room for humans.
pub const MAX_METRICS_CONNECTIONS: usize = 16;

/// Largest request head read. A GET line and a few headers fit in far less.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// A scraper that sends nothing for this long is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause after a failed `accept` (EMFILE, ENFILE, ENOBUFS): retrying at once would spin a core
/// while the condition lasts; a tenth of a second lets descriptors free up and costs a scrape
/// nothing noticeable.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Produces a page: the current metrics as Prometheus text, or the status page's HTML.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// What the side door serves: `/metrics` always, `/status` when the daemon has a status page
/// (an operator's HTML summary, `crate::status`).
#[derive(Clone)]
pub struct Pages {
    /// `GET /metrics`.
    pub metrics: Render,
    /// `GET /status`.
    pub status: Option<Render>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("status", &self.status.is_some())
            .finish_non_exhaustive()
    }
}

/// Prometheus text for one metric: `# HELP`, `# TYPE` and the sample.
pub fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Binds the metrics listener. Bind errors surface here, before the daemon reports ready.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// One connection being served: its task, and whether it is still waiting for its request.
#[derive(Debug)]
struct Slot {
    task: AbortHandle,
    waiting: Arc<AtomicBool>,
}

/// Serves `/metrics`, `/healthz` and `/status` until the task is dropped (which aborts its
/// connections).
pub async fn serve(listener: TcpListener, pages: Pages) {
    let mut tasks = JoinSet::new();
    // In accept order, so the first waiting one is the oldest idler.
    let mut slots: VecDeque<Slot> = VecDeque::with_capacity(MAX_METRICS_CONNECTIONS);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("metrics accept failed: {e}; pausing");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        while tasks.try_join_next().is_some() {}
        slots.retain(|slot| !slot.task.is_finished());
        if slots.len() >= MAX_METRICS_CONNECTIONS {
            let idler = slots
                .iter()
                .position(|slot| slot.waiting.load(Ordering::Acquire));
            match idler.and_then(|i| slots.remove(i)) {
                Some(evicted) => {
                    tracing::debug!(%peer, "metrics: evicting an idle connection");
                    evicted.task.abort();
                }
                None => {
                    tracing::debug!(%peer, "metrics connection refused: too many");
                    continue;
                }
            }
        }
        let pages = pages.clone();
        let waiting = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&waiting);
        let task = tasks.spawn(async move {
            if let Err(e) = answer(stream, &pages, &flag).await {
                tracing::debug!(%peer, "metrics request failed: {e}");
            }
        });
        slots.push_back(Slot { task, waiting });
    }
}

async fn answer(mut stream: TcpStream, pages: &Pages, waiting: &AtomicBool) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read_head)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
    waiting.store(false, Ordering::Release);
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (status, content_type, body) = match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            (pages.metrics)(),
        ),
        (Some("GET"), Some("/healthz")) => ("200 OK", "text/plain", "ok\n".to_owned()),
        (Some("GET"), Some("/status")) => match &pages.status {
            Some(status) => ("200 OK", "text/html; charset=utf-8", status()),
            None => ("404 Not Found", "text/plain", "no status page\n".to_owned()),
        },
        (Some("GET"), Some(_)) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET /metrics, /healthz and /status\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// How long [`probe`] waits for the answer: a health check that hangs is a failed one.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /healthz` at `addr` (a daemon's metrics address): a container's health check, since
/// an image built `FROM scratch` holds no HTTP client. Ok when the answer is `200 OK` within
/// [`PROBE_TIMEOUT`].
pub fn probe(addr: SocketAddr) -> Result<(), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(PROBE_TIMEOUT)))
        .map_err(|e| format!("{addr}: {e}"))?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: probe\r\n\r\n")
        .map_err(|e| format!("{addr}: {e}"))?;
    // The status line is all that matters; the answer is a few bytes.
    let mut answer = [0u8; 64];
    let read = stream
        .read(&mut answer)
        .map_err(|e| format!("{addr}: {e}"))?;
    let head = String::from_utf8_lossy(answer.get(..read).unwrap_or_default());
    if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!(
            "{addr}: {}",
            head.lines().next().unwrap_or("no answer")
        ))
    }
}
