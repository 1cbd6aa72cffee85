//! A fault-injecting HTTP/1.1 proxy for the integration tests.
//!
//! It listens on 127.0.0.1 only and sits between s3mount (`--endpoint-url` = [`FaultProxy::endpoint`],
//! path style) and a local S3 server (moto). Every request is read completely (request line,
//! headers, a `Content-Length` or `Transfer-Encoding: chunked` body; `aws-chunked` uploads carry a
//! `Content-Length` and pass through untouched), then either forwarded over a keep-alive upstream
//! connection or answered with a fault when a [`Rule`] matches:
//!
//! | [`Fault`] | what the client sees | does the server see the request? |
//! |---|---|---|
//! | `Status500` | `500 InternalError` with an S3 XML error body | no |
//! | `Status503` | `503 SlowDown` with an S3 XML error body | no |
//! | `ResetBeforeResponse` | the connection reset (RST), no response | no |
//! | `ResetAfterForward` | the connection reset, no response | yes (the reply is lost) |
//! | `ResetMidBody` | status and headers, half the body, then RST | yes |
//! | `TruncatedBody` | status, headers with the full `Content-Length` (at least 1), half the body, then a clean close | yes |
//! | `Latency(d)` | the normal response, `d` later | yes |
//!
//! A rule matches on the HTTP method (`""` = any) and a substring of the request line
//! (`"PUT /bucket/key?partNumber=1&uploadId=… HTTP/1.1"`; `""` = any), lets `skip` matching
//! requests through first, then fires `count` times (`None` = for ever). The first rule that
//! matches (in the order they were added) decides. Rules are added and removed while the proxy
//! runs. aws-sdk-s3 retries (s3mount makes 5 attempts per request), so a rule that fires for ever
//! exhausts the retries and the operation fails, while `count: Some(n)` with `n < 5` is a
//! transient fault the client should ride out.
//!
//! [`FaultProxy::set_offline`] simulates a stopped server: the listening port is closed (new
//! connections are refused) and every open connection is shut down, until it is set online again.
//!
//! Every request is recorded ([`FaultProxy::requests`], with lower-cased headers) with the fault
//! it got and the upstream status, so tests can count e.g. UploadPartCopy calls
//! ([`SeenRequest::is_upload_part_copy`]).
//!
//! Plain std::net and one thread per connection. Dropping the proxy stops the accept loop, shuts
//! down every connection and joins every thread.
//!
//! ```ignore
//! let proxy = FaultProxy::start(s3.endpoint());
//! let mount = Mount::builder(&s3, bucket.name()).endpoint_url(&proxy.endpoint()).mount();
//! let rule = proxy.fail(Rule::new("PUT", "partNumber=", Fault::Status500));
//! // ... the upload fails ...
//! proxy.remove(rule); // or proxy.clear()
//! assert!(proxy.count_where(|r| r.is_upload_part_copy()) >= 1);
//! ```

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, sleep, JoinHandle};
use std::time::{Duration, Instant};

/// Longest request or response head accepted (request line + headers).
const MAX_HEAD: usize = 64 * 1024;
/// How long the accept loop sleeps when there is no pending connection.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// Read timeout on upstream connections (moto answers in well under this).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(120);

/// What to do to a request that matches a [`Rule`] (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer `500 InternalError` (S3 XML error body) without forwarding.
    Status500,
    /// Answer `503 SlowDown` (S3 XML error body) without forwarding.
    Status503,
    /// Do not forward; reset the connection instead of answering.
    ResetBeforeResponse,
    /// Forward (the server applies the request), then reset instead of answering.
    ResetAfterForward,
    /// Forward, send status, headers and half the body (half the head if the body is empty),
    /// then reset.
    ResetMidBody,
    /// Forward, send status and headers with the real `Content-Length` (1 if the body is
    /// empty) but only half the body, then close cleanly.
    TruncatedBody,
    /// Wait this long before forwarding normally.
    Latency(Duration),
}

/// When a [`Fault`] applies.
#[derive(Clone, Debug)]
pub struct Rule {
    /// HTTP method that must match exactly (`"PUT"`), or `""` for any.
    pub method: &'static str,
    /// Substring the request line must contain (`"partNumber="`, `"uploadId="`, `"?tagging"`,
    /// a key), or `""` for any.
    pub contains: &'static str,
    /// What to do.
    pub fault: Fault,
    /// How many matching requests get the fault; `None` = every one.
    pub count: Option<u32>,
    /// How many matching requests to let through before the fault starts.
    pub skip: u32,
}

impl Rule {
    /// A rule that fires on every matching request.
    pub fn new(method: &'static str, contains: &'static str, fault: Fault) -> Rule {
        Rule {
            method,
            contains,
            fault,
            count: None,
            skip: 0,
        }
    }

    /// Fire only `n` times.
    pub fn times(mut self, n: u32) -> Rule {
        self.count = Some(n);
        self
    }

    /// Let the first `n` matching requests through.
    pub fn after(mut self, n: u32) -> Rule {
        self.skip = n;
        self
    }

    fn matches(&self, method: &str, request_line: &str) -> bool {
        (self.method.is_empty() || self.method.eq_ignore_ascii_case(method))
            && (self.contains.is_empty() || request_line.contains(self.contains))
    }
}

/// Handle on a rule added with [`FaultProxy::fail`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleId(u64);

/// One request the proxy received.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query, as sent (`/bucket/key?partNumber=2&uploadId=…`).
    pub target: String,
    /// Headers as received, with lower-cased names, in order.
    pub headers: Vec<(String, String)>,
    /// Length of the (de-chunked) request body.
    pub body_len: usize,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
    /// The server's status, when the request was forwarded and answered.
    pub status: Option<u16>,
}

impl SeenRequest {
    /// The first header of that (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    fn query_has(&self, param: &str) -> bool {
        self.target.split_once('?').is_some_and(|(_, q)| {
            q.split('&')
                .any(|kv| kv == param || kv.starts_with(&format!("{param}=")))
        })
    }

    /// UploadPart (PUT with `partNumber`, no copy source).
    pub fn is_upload_part(&self) -> bool {
        self.method == "PUT"
            && self.query_has("partNumber")
            && self.header("x-amz-copy-source").is_none()
    }

    /// UploadPartCopy (PUT with `partNumber` and `x-amz-copy-source`).
    pub fn is_upload_part_copy(&self) -> bool {
        self.method == "PUT"
            && self.query_has("partNumber")
            && self.header("x-amz-copy-source").is_some()
    }

    /// Whether the query names no sub-resource: none at all, or only the SDK's `x-id`
    /// (`?x-id=PutObject`).
    fn no_sub_resource(&self) -> bool {
        self.target
            .split_once('?')
            .is_none_or(|(_, q)| q.split('&').all(|kv| kv.starts_with("x-id=")))
    }

    /// PutObject (PUT without a sub-resource or copy source).
    pub fn is_put_object(&self) -> bool {
        self.method == "PUT" && self.no_sub_resource() && self.header("x-amz-copy-source").is_none()
    }

    /// CopyObject (PUT without a sub-resource, with `x-amz-copy-source`).
    pub fn is_copy_object(&self) -> bool {
        self.method == "PUT" && self.no_sub_resource() && self.header("x-amz-copy-source").is_some()
    }

    /// CreateMultipartUpload (`POST ?uploads`).
    pub fn is_create_multipart(&self) -> bool {
        self.method == "POST" && self.query_has("uploads")
    }

    /// CompleteMultipartUpload (`POST ?uploadId=`).
    pub fn is_complete_multipart(&self) -> bool {
        self.method == "POST" && self.query_has("uploadId")
    }

    /// AbortMultipartUpload (`DELETE ?uploadId=`).
    pub fn is_abort_multipart(&self) -> bool {
        self.method == "DELETE" && self.query_has("uploadId")
    }
}

#[derive(Default)]
struct State {
    rules: Vec<(RuleId, Rule)>,
    next_rule: u64,
    log: Vec<SeenRequest>,
    seen: usize,
    faulted: usize,
    /// Requested: the port should be closed.
    offline: bool,
    /// Actual: whether the listening socket is open.
    listening: bool,
}

struct Shared {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: Mutex<State>,
    stop: AtomicBool,
    /// A clone of every open socket (client and upstream side), to shut them down.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn register(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().unwrap().insert(id, clone);
        Some(id)
    }

    fn deregister(&self, id: Option<u64>) {
        if let Some(id) = id {
            self.conns.lock().unwrap().remove(&id);
        }
    }

    fn shutdown_all(&self) {
        for (_, s) in self.conns.lock().unwrap().drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Records the request and picks the fault to inject; returns (fault, log index).
    fn decide(&self, req: &Request) -> (Option<Fault>, usize) {
        let mut st = self.state.lock().unwrap();
        st.seen += 1;
        let mut fault = None;
        for (_, rule) in st.rules.iter_mut() {
            if !rule.matches(&req.method, &req.request_line) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            match rule.count {
                Some(0) => continue,
                Some(n) => rule.count = Some(n - 1),
                None => {}
            }
            fault = Some(rule.fault);
            break;
        }
        if fault.is_some() {
            st.faulted += 1;
        }
        st.log.push(SeenRequest {
            method: req.method.clone(),
            target: req.target.clone(),
            headers: req
                .received_headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            body_len: req.body.len(),
            fault,
            status: None,
        });
        (fault, st.log.len() - 1)
    }

    fn note_status(&self, index: usize, status: u16) {
        if let Some(r) = self.state.lock().unwrap().log.get_mut(index) {
            r.status = Some(status);
        }
    }

    fn offline(&self) -> bool {
        self.state.lock().unwrap().offline
    }
}

/// The proxy. See the module docs.
pub struct FaultProxy {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Start a proxy on a free 127.0.0.1 port in front of `upstream` (`http://127.0.0.1:PORT`,
    /// e.g. [`super::S3Server::endpoint`]).
    pub fn start(upstream: &str) -> FaultProxy {
        let hostport = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/');
        let upstream: SocketAddr = hostport
            .to_socket_addrs()
            .unwrap_or_else(|e| panic!("fault proxy: bad upstream {hostport}: {e}"))
            .next()
            .expect("fault proxy: upstream resolves to no address");
        assert!(
            upstream.ip().is_loopback(),
            "fault proxy: upstream must be on the loopback interface, not {upstream}"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("fault proxy: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("fault proxy: set_nonblocking");
        let addr = listener.local_addr().expect("fault proxy: local_addr");
        let shared = Arc::new(Shared {
            addr,
            upstream,
            state: Mutex::new(State {
                listening: true,
                ..State::default()
            }),
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            workers: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(s, listener))
            .expect("fault proxy: spawn accept thread");
        FaultProxy {
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy, for `--endpoint-url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// Add a fault rule; it applies from the next request on.
    pub fn fail(&self, rule: Rule) -> RuleId {
        let mut st = self.shared.state.lock().unwrap();
        st.next_rule += 1;
        let id = RuleId(st.next_rule);
        st.rules.push((id, rule));
        id
    }

    /// Remove one rule (no-op if it is gone already).
    pub fn remove(&self, id: RuleId) {
        self.shared
            .state
            .lock()
            .unwrap()
            .rules
            .retain(|(i, _)| *i != id);
    }

    /// Remove every rule.
    pub fn clear(&self) {
        self.shared.state.lock().unwrap().rules.clear();
    }

    /// How many times rule `id` may still fire (`None`: for ever, or the rule is gone).
    pub fn remaining(&self, id: RuleId) -> Option<u32> {
        let st = self.shared.state.lock().unwrap();
        st.rules
            .iter()
            .find(|(i, _)| *i == id)
            .and_then(|(_, r)| r.count)
    }

    /// Requests received so far.
    pub fn seen(&self) -> usize {
        self.shared.state.lock().unwrap().seen
    }

    /// Requests that got a fault so far.
    pub fn faulted(&self) -> usize {
        self.shared.state.lock().unwrap().faulted
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.state.lock().unwrap().log.clone()
    }

    /// How many recorded requests satisfy `pred`.
    pub fn count_where(&self, pred: impl Fn(&SeenRequest) -> bool) -> usize {
        self.shared
            .state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|r| pred(r))
            .count()
    }

    /// Forget the recorded requests and zero the counters (rules stay).
    pub fn reset_log(&self) {
        let mut st = self.shared.state.lock().unwrap();
        st.log.clear();
        st.seen = 0;
        st.faulted = 0;
    }

    /// A one-line-per-request summary of the log, for assertion messages.
    pub fn summary(&self) -> String {
        self.requests()
            .iter()
            .map(|r| {
                format!(
                    "{} {}{} -> {}{}",
                    r.method,
                    r.target,
                    if r.header("x-amz-copy-source").is_some() {
                        " [copy-source]"
                    } else {
                        ""
                    },
                    r.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    r.fault
                        .map(|f| format!(" (fault {f:?})"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Simulate a stopped server (`true`: the port is closed and every connection shut down)
    /// or bring it back (`false`: listening again on the same port). Returns once done.
    pub fn set_offline(&self, offline: bool) {
        self.shared.state.lock().unwrap().offline = offline;
        if offline {
            self.shared.shutdown_all();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.shared.state.lock().unwrap().listening != offline {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "fault proxy: could not {} port {}",
                if offline { "close" } else { "re-open" },
                self.port()
            );
            sleep(ACCEPT_POLL);
        }
        if offline {
            // connections accepted in the last instant
            self.shared.shutdown_all();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        self.shared.shutdown_all();
        let workers: Vec<_> = self.shared.workers.lock().unwrap().drain(..).collect();
        for w in workers {
            let _ = w.join();
        }
    }
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut listener = Some(listener);
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.offline() {
            if listener.take().is_some() {
                shared.state.lock().unwrap().listening = false;
            }
            sleep(ACCEPT_POLL);
            continue;
        }
        let Some(l) = listener.as_ref() else {
            // back online: listen on the same port again
            match TcpListener::bind(shared.addr).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            }) {
                Ok(l) => {
                    listener = Some(l);
                    shared.state.lock().unwrap().listening = true;
                }
                Err(_) => sleep(ACCEPT_POLL),
            }
            continue;
        };
        match l.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                let s = shared.clone();
                let handle = thread::Builder::new()
                    .name("fault-proxy-conn".into())
                    .spawn(move || serve(s, stream));
                let mut workers = shared.workers.lock().unwrap();
                workers.retain(|w| !w.is_finished());
                if let Ok(h) = handle {
                    workers.push(h);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => sleep(ACCEPT_POLL),
            Err(_) => sleep(ACCEPT_POLL),
        }
    }
}

/// A parsed request with its whole body.
struct Request {
    method: String,
    target: String,
    request_line: String,
    /// The headers as received (for the log).
    received_headers: Vec<(String, String)>,
    /// The headers to forward: as received, minus the hop-by-hop ones we re-frame.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
    head_only: bool,
}

/// A parsed response with its whole body.
struct Response {
    status: u16,
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// No body by definition (HEAD request, 1xx/204/304): headers are passed as they are.
    bodiless: bool,
    close: bool,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// A message head: the start line and the header lines (name, value) in order.
type Head = (String, Vec<(String, String)>);

/// Reads a head (start line + header lines). `Ok(None)` on a clean EOF before any byte.
fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Head>> {
    let mut total = 0usize;
    let mut start = String::new();
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            return if start.is_empty() && total == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF in head"))
            };
        }
        total += n;
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            continue; // stray CRLF between messages
        }
        start = text;
        break;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF in headers",
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            return Ok(Some((start, headers)));
        }
        if let Some((k, v)) = text.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
}

/// Reads a `Transfer-Encoding: chunked` body (and its trailers), returning the data.
fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF in chunk size",
            ));
        }
        let size_text = line.trim().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // trailers until an empty line
            loop {
                let mut t = String::new();
                if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    match header(headers, "content-length") {
        None => Ok(None),
        Some(v) => v
            .parse::<usize>()
            .map(Some)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length")),
    }
}

/// Reads one request from the client. Answers `Expect: 100-continue` itself.
fn read_request(client: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let Some((line, mut headers)) = read_head(client)? else {
        return Ok(None);
    };
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let version = parts.next().unwrap_or("HTTP/1.1").to_string();
    if method.is_empty() || target.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    }
    let close = has_token(&headers, "connection", "close") || version == "HTTP/1.0";
    if has_token(&headers, "expect", "100-continue") {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let chunked = has_token(&headers, "transfer-encoding", "chunked");
    let body = if chunked {
        read_chunked(client)?
    } else if let Some(n) = content_length(&headers)? {
        let mut b = vec![0u8; n];
        client.read_exact(&mut b)?;
        b
    } else {
        Vec::new()
    };
    let received_headers = headers.clone();
    let had_length = chunked || header(&headers, "content-length").is_some();
    headers.retain(|(k, _)| {
        ![
            "transfer-encoding",
            "content-length",
            "expect",
            "connection",
            "keep-alive",
        ]
        .iter()
        .any(|h| k.eq_ignore_ascii_case(h))
    });
    if had_length {
        headers.push(("Content-Length".into(), body.len().to_string()));
    }
    Ok(Some(Request {
        head_only: method.eq_ignore_ascii_case("HEAD"),
        method,
        target,
        request_line: line,
        received_headers,
        headers,
        body,
        close,
    }))
}

fn serialize_request(req: &Request) -> Vec<u8> {
    let mut out = format!("{}\r\n", req.request_line);
    for (k, v) in &req.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&req.body);
    bytes
}

/// Reads one (final) response from the server.
fn read_response(upstream: &mut BufReader<TcpStream>, head_only: bool) -> io::Result<Response> {
    loop {
        let (line, mut headers) = read_head(upstream)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "server closed the connection")
        })?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
        if (100..200).contains(&status) {
            continue; // interim response; the final one follows
        }
        let mut close = has_token(&headers, "connection", "close") || line.starts_with("HTTP/1.0");
        let bodiless = head_only || status == 204 || status == 304;
        let body = if bodiless {
            Vec::new()
        } else if has_token(&headers, "transfer-encoding", "chunked") {
            read_chunked(upstream)?
        } else if let Some(n) = content_length(&headers)? {
            let mut b = vec![0u8; n];
            upstream.read_exact(&mut b)?;
            b
        } else {
            // delimited by the end of the connection
            close = true;
            let mut b = Vec::new();
            upstream.read_to_end(&mut b)?;
            b
        };
        if bodiless {
            headers.retain(|(k, _)| {
                !["transfer-encoding", "connection", "keep-alive"]
                    .iter()
                    .any(|h| k.eq_ignore_ascii_case(h))
            });
        } else {
            headers.retain(|(k, _)| {
                ![
                    "transfer-encoding",
                    "content-length",
                    "connection",
                    "keep-alive",
                ]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
            });
        }
        return Ok(Response {
            status,
            status_line: line,
            headers,
            body,
            bodiless,
            close,
        });
    }
}

/// The response head as sent to the client, with `Content-Length: advertised` unless bodiless.
fn response_head(resp: &Response, advertised: usize) -> Vec<u8> {
    let mut out = format!("{}\r\n", resp.status_line);
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !resp.bodiless {
        out.push_str(&format!("Content-Length: {advertised}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// An S3-style error response.
fn error_response(status: u16, code: &str, message: &str, head_only: bool, n: usize) -> Vec<u8> {
    let reason = match status {
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let request_id = format!("FAULTPROXY{n:06}");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>{request_id}</RequestId>\
         <HostId>fault-proxy</HostId></Error>"
    );
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n\
         x-amz-request-id: {request_id}\r\nContent-Length: {}\r\n\r\n",
        if head_only { 0 } else { body.len() }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Makes the next close of `stream` (the last descriptor) send a RST instead of a FIN.
fn set_reset_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a valid socket descriptor with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// An upstream connection and its registry id.
struct Upstream {
    reader: BufReader<TcpStream>,
    id: Option<u64>,
}

fn connect_upstream(shared: &Shared) -> io::Result<Upstream> {
    let s = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(10))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    let id = shared.register(&s);
    Ok(Upstream {
        reader: BufReader::new(s),
        id,
    })
}

/// Sends `req` upstream (reusing the keep-alive connection, reconnecting once if it went
/// stale) and reads the response.
fn forward(
    shared: &Shared,
    upstream: &mut Option<Upstream>,
    req: &Request,
) -> io::Result<Response> {
    let bytes = serialize_request(req);
    for attempt in 0..2 {
        let reused = upstream.is_some();
        if upstream.is_none() {
            *upstream = Some(connect_upstream(shared)?);
        }
        let up = upstream.as_mut().unwrap();
        let result = up
            .reader
            .get_mut()
            .write_all(&bytes)
            .and_then(|_| read_response(&mut up.reader, req.head_only));
        match result {
            Ok(resp) => {
                if resp.close {
                    let up = upstream.take().unwrap();
                    shared.deregister(up.id);
                }
                return Ok(resp);
            }
            Err(e) => {
                let up = upstream.take().unwrap();
                shared.deregister(up.id);
                // A kept-alive connection the server closed meanwhile: try a fresh one once.
                if !(reused && attempt == 0) || shared.stop.load(Ordering::SeqCst) {
                    return Err(e);
                }
            }
        }
    }
    Err(io::Error::other("unreachable"))
}

fn serve(shared: Arc<Shared>, client: TcpStream) {
    let id = shared.register(&client);
    let mut reader = BufReader::new(client);
    let mut upstream: Option<Upstream> = None;
    let mut reset = false;
    while let Ok(Some(req)) = read_request(&mut reader) {
        if shared.stop.load(Ordering::SeqCst) || shared.offline() {
            reset = true;
            break;
        }
        let (fault, index) = shared.decide(&req);
        let n = index + 1;
        let client = reader.get_mut();
        match fault {
            Some(Fault::Status500) => {
                let r = error_response(
                    500,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                    req.head_only,
                    n,
                );
                if client.write_all(&r).is_err() || req.close {
                    break;
                }
                continue;
            }
            Some(Fault::Status503) => {
                let r = error_response(
                    503,
                    "SlowDown",
                    "Please reduce your request rate.",
                    req.head_only,
                    n,
                );
                if client.write_all(&r).is_err() || req.close {
                    break;
                }
                continue;
            }
            Some(Fault::ResetBeforeResponse) => {
                reset = true;
                break;
            }
            Some(Fault::Latency(d)) => sleep(d),
            _ => {}
        }
        let resp = match forward(&shared, &mut upstream, &req) {
            Ok(r) => r,
            Err(_) => {
                // the server is gone: the client sees the connection drop
                reset = true;
                break;
            }
        };
        shared.note_status(index, resp.status);
        let client = reader.get_mut();
        match fault {
            Some(Fault::ResetAfterForward) => {
                reset = true;
                break;
            }
            Some(Fault::ResetMidBody) => {
                let head = response_head(&resp, resp.body.len());
                if resp.body.is_empty() {
                    let _ = client.write_all(&head[..head.len() / 2]);
                } else {
                    let _ = client.write_all(&head);
                    let _ = client.write_all(&resp.body[..resp.body.len() / 2]);
                }
                let _ = client.flush();
                sleep(Duration::from_millis(20));
                reset = true;
                break;
            }
            Some(Fault::TruncatedBody) => {
                let advertised = resp.body.len().max(1);
                let _ = client.write_all(&response_head(&resp, advertised));
                let _ = client.write_all(&resp.body[..resp.body.len() / 2]);
                let _ = client.flush();
                let _ = client.shutdown(Shutdown::Write);
                break;
            }
            _ => {
                let mut out = response_head(&resp, resp.body.len());
                out.extend_from_slice(&resp.body);
                if client.write_all(&out).is_err() || req.close {
                    break;
                }
            }
        }
    }
    if let Some(up) = upstream.take() {
        shared.deregister(up.id);
    }
    if reset {
        set_reset_on_close(reader.get_ref());
    }
    // Drop every descriptor of the client socket: the registry clone and ours. The last close
    // sends the RST (with linger 0) or the FIN.
    shared.deregister(id);
    drop(reader);
}
