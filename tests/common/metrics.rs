//! The metrics endpoint as a test reads it: a GET, and one sample of the Prometheus text.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP/1.0 GET on 127.0.0.1: (status code, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, body.to_string())
}

/// The value of one sample (`name{labels}` exactly as rendered), 0 if absent.
pub fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("numeric sample"))
        .unwrap_or(0.0)
}

/// A mount serving its metrics on a free port of 127.0.0.1: (the mount, the port). A port
/// another process takes between the pick and the bind is picked again.
pub fn mount_with_metrics(make: impl Fn() -> super::MountBuilder) -> (super::Mount, u16) {
    for _ in 0..4 {
        let port = super::free_port();
        let addr = format!("127.0.0.1:{port}");
        match make().args(["--metrics-addr", &addr]).try_mount() {
            Ok(m) => return (m, port),
            Err(f) if f.stderr.contains("cannot listen") => continue,
            Err(f) => panic!("mount failed ({}):\n{}", f.code, f.stderr),
        }
    }
    panic!("no free port for the metrics endpoint after 4 tries");
}
