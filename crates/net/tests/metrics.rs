//! The metrics endpoint under abuse: idle TCP connections that never send a request must not
//! keep a scraper out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use switchboard_net::metrics::{self, MAX_METRICS_CONNECTIONS};

fn get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn four_times_its_connection_cap_of_idle_connections_do_not_keep_a_scraper_out() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(metrics::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = runtime.spawn(metrics::serve(
        listener,
        metrics::Pages {
            metrics: Arc::new(|| "switchboard_test_metric 1\n".to_owned()),
            status: None,
        },
    ));
    // Idlers: connected, never a byte sent, held open for the whole test.
    let idlers: Vec<TcpStream> = (0..4 * MAX_METRICS_CONNECTIONS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        let response = get(addr, "/metrics").expect("a scrape past the idlers is answered");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("switchboard_test_metric 1"), "{response}");
    }
    drop(idlers);
    server.abort();
}
