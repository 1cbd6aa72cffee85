//! The fault proxy itself: each fault reaches an SDK client as it should.

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;

use super::*;

/// An SDK client through `endpoint` that does not retry, so every fault shows.
fn no_retry_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = s3_client_config(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn get_via(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => match out.body.collect().await {
            Ok(b) => Ok(b.into_bytes().to_vec()),
            Err(e) => Err(format!("body: {e}")),
        },
        Err(e) => Err(format!(
            "code={} {}",
            e.code().unwrap_or("-"),
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )),
    }
}

async fn put_via(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &[u8],
) -> Result<(), String> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "code={} {}",
                e.code().unwrap_or("-"),
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })
}

#[tokio::test]
async fn fault_proxy_injects_each_fault() {
    let Served { s3, bucket } = Served::new().await;
    let proxy = FaultProxy::start(s3.endpoint());
    let c = no_retry_client(&proxy.endpoint());
    let b = bucket.name();
    let big = pseudo_random_bytes(MIB, 7);
    bucket.put("big", &big).await;

    // plain forwarding, keep-alive, several requests
    put_via(&c, b, "k", b"hello").await.unwrap();
    assert_eq!(get_via(&c, b, "k").await.unwrap(), b"hello");
    assert_eq!(get_via(&c, b, "big").await.unwrap(), big);
    assert_eq!(bucket.get("k").await, b"hello");
    assert_eq!(proxy.seen(), 3);
    assert_eq!(proxy.faulted(), 0);

    // 500 and 503 carry S3 error codes; nothing reaches the server
    let r = proxy.fail(Rule::new("PUT", "", Fault::Status500));
    let e = put_via(&c, b, "k", b"five hundred").await.unwrap_err();
    assert!(e.contains("code=InternalError"), "{e}");
    assert_eq!(bucket.get("k").await, b"hello");
    proxy.remove(r);
    let r = proxy.fail(Rule::new("GET", "/k", Fault::Status503));
    let e = get_via(&c, b, "k").await.unwrap_err();
    assert!(e.contains("code=SlowDown"), "{e}");
    assert_eq!(
        get_via(&c, b, "big").await.unwrap(),
        big,
        "rule is for /k only"
    );
    proxy.remove(r);

    // reset before the response: not applied; after forwarding: applied, reply lost
    proxy.fail(Rule::new("PUT", "", Fault::ResetBeforeResponse).times(1));
    let e = put_via(&c, b, "k", b"reset-before").await.unwrap_err();
    assert!(e.starts_with("code=-"), "no HTTP answer: {e}");
    assert_eq!(bucket.get("k").await, b"hello");
    put_via(&c, b, "k", b"after-reset")
        .await
        .expect("the rule fired once only");
    proxy.fail(Rule::new("PUT", "", Fault::ResetAfterForward).times(1));
    put_via(&c, b, "k", b"applied-but-lost").await.unwrap_err();
    assert_eq!(bucket.get("k").await, b"applied-but-lost");

    // broken response bodies
    proxy.fail(Rule::new("GET", "/big", Fault::ResetMidBody).times(1));
    get_via(&c, b, "big").await.unwrap_err();
    proxy.fail(Rule::new("GET", "/big", Fault::TruncatedBody).times(1));
    let e = get_via(&c, b, "big").await.unwrap_err();
    assert!(
        e.starts_with("body:"),
        "truncation shows while reading the body: {e}"
    );
    assert_eq!(get_via(&c, b, "big").await.unwrap(), big);

    // latency
    proxy.fail(Rule::new("GET", "", Fault::Latency(Duration::from_millis(400))).times(1));
    let t = Instant::now();
    assert_eq!(get_via(&c, b, "k").await.unwrap(), b"applied-but-lost");
    assert!(t.elapsed() >= Duration::from_millis(400));

    // skip then fire
    let r = proxy.fail(Rule::new("GET", "/k", Fault::Status500).after(1).times(1));
    get_via(&c, b, "k").await.expect("first one passes");
    get_via(&c, b, "k").await.expect_err("second one fails");
    get_via(&c, b, "k").await.expect("third one passes");
    assert_eq!(proxy.remaining(r), Some(0));
    proxy.clear();

    // chunked request bodies are de-chunked and forwarded with a Content-Length
    {
        use std::net::TcpStream;
        let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        let req = format!(
            "PUT /{b}/chunked HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n5\r\nhello\r\n7\r\n chunks\r\n0\r\n\r\n",
            proxy.port()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert_eq!(bucket.get("chunked").await, b"hello chunks");
    }

    // a stopped server: connections refused, then back on the same port
    proxy.set_offline(true);
    let e = get_via(&c, b, "k").await.unwrap_err();
    assert!(e.starts_with("code=-"), "no HTTP answer while offline: {e}");
    proxy.set_offline(false);
    assert_eq!(get_via(&c, b, "k").await.unwrap(), b"applied-but-lost");

    let log = proxy.requests();
    assert!(log.iter().any(|r| r.fault == Some(Fault::TruncatedBody)));
    assert!(log.iter().any(|r| r.is_put_object()));
}
