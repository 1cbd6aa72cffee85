//! The write path through a real mount against moto (issue 3, "Tests"): every check looks at
//! the bucket through the SDK, not only through the mount.
//!
//! Covered: round trips around part boundaries, Content-Type guessing, O_TRUNC overwrite,
//! appends, writes in the middle and past the end, truncate/ftruncate, UploadPartCopy reuse for
//! a large object, read-your-writes before close, fsync committing, unlink, mkdir/rmdir markers,
//! rename (file, tree, onto a file, RENAME_NOREPLACE/RENAME_EXCHANGE), symlinks the s3fs way,
//! hard links refused, chmod/chown/utimes in s3fs headers, tag and metadata xattrs with S3's
//! limits, real tools (cp -r, rsync -a, tar x, mv, sed -i, echo >>, truncate, rm -r, ln -s), and
//! failures injected by `common::fault_proxy` (500s on PUT / UploadPart / Complete, a stopped
//! server) reaching close/fsync with the old object intact and no multipart upload left, and
//! files and symlinks written by s3fs read back in s3mount and the other way round (when
//! Debian's s3fs is installed; skipped otherwise).
//!
//! Mounts that go through the fault proxy use `--debug` (its stderr is printed when a test
//! fails) and a `--cache-dir` the test owns, so staging files kept after a failed upload are
//! cleaned up with the test. A failed close is followed by one more upload attempt when the
//! file is released, so those tests wait for its "kept at" log line before clearing a fault.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;

use common::fault_proxy::{Fault, FaultProxy, Rule};
use common::*;

const MIB: usize = 1 << 20;
/// The part size these tests mount with (`--write-part-size`): S3's minimum.
const PART: usize = 5 * MIB;
const PART_ARG: &str = "5242880";

/// S_IFLNK | 0777, as s3fs writes it in `x-amz-meta-mode`.
const SYMLINK_MODE: &str = "41471";

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// Writes `data` in 1 MiB writes to a file opened with `opts`, then closes it, returning the
/// first error (of a write or of close).
fn write_with(opts: &OpenOptions, path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = opts.open(path)?;
    for chunk in data.chunks(MIB) {
        if let Err(e) = f.write_all(chunk) {
            let _ = close(f);
            return Err(e);
        }
    }
    close(f)
}

/// Creates or truncates `path` (O_CREAT|O_TRUNC|O_WRONLY), writes `data`, closes it.
fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    write_with(
        OpenOptions::new().write(true).create(true).truncate(true),
        path,
        data,
    )
}

#[track_caller]
fn must_write(path: &Path, data: &[u8]) {
    write_file(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Runs `sh -c script` in `dir`; panics with the output unless it succeeds; returns stdout.
#[track_caller]
fn sh(dir: &Path, script: &str) -> String {
    let out = sh_output(dir, script);
    assert!(
        out.status.success(),
        "`{script}` in {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_output(dir: &Path, script: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run sh -c {script}: {e}"))
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let (a, b) = (cpath(from), cpath(to));
    // SAFETY: valid C strings; AT_FDCWD with absolute paths.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The multipart uploads in progress in the bucket, as "key uploadId".
async fn multipart_uploads(bucket: &Bucket) -> Vec<String> {
    let out = bucket
        .client()
        .list_multipart_uploads()
        .bucket(bucket.name())
        .send()
        .await
        .expect("list_multipart_uploads");
    out.uploads()
        .iter()
        .map(|u| {
            format!(
                "{} {}",
                u.key().unwrap_or_default(),
                u.upload_id().unwrap_or_default()
            )
        })
        .collect()
}

async fn etag(bucket: &Bucket, key: &str) -> String {
    bucket
        .head(key)
        .await
        .unwrap_or_else(|| panic!("{key} should exist"))
        .e_tag()
        .unwrap_or_default()
        .to_string()
}

async fn content_type(bucket: &Bucket, key: &str) -> String {
    bucket
        .head(key)
        .await
        .unwrap_or_else(|| panic!("{key} should exist"))
        .content_type()
        .unwrap_or_default()
        .to_string()
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// Asserts the bytes are equal without printing megabytes on failure.
#[track_caller]
fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let show = |b: &[u8]| {
        let end = (first + 16).min(b.len());
        format!("{:?}", &b[first.min(b.len())..end])
    };
    panic!(
        "{what}: {} bytes, expected {}; first difference at offset {first}: got {} want {}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    );
}

/// Waits until the mount's stderr contains `needle` more than `before` times (e.g. the log line
/// of a background retry); returns the stderr.
#[track_caller]
fn wait_for_log(mount: &Mount, needle: &str, before: usize, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = mount.stderr();
        if log.matches(needle).count() > before {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "s3mount did not log `{needle}` (a {}th time) within {timeout:?}; stderr:\n{log}",
            before + 1
        );
        sleep(Duration::from_millis(100));
    }
}

/// How many times the mount's stderr contains `needle` so far.
fn log_count(mount: &Mount, needle: &str) -> usize {
    mount.stderr().matches(needle).count()
}

/// The path in the last "... kept at PATH: ..." log line (where unsaved bytes were kept).
fn kept_path(log: &str) -> Option<PathBuf> {
    let line = log.lines().rev().find(|l| l.contains("kept at "))?;
    let rest = &line[line.find("kept at ")? + "kept at ".len()..];
    let end = rest.find(": ").unwrap_or(rest.len());
    Some(PathBuf::from(rest[..end].trim()))
}

fn local_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("s3mount-wp-local-")
        .tempdir()
        .expect("tempdir")
}

/// A mount through `proxy` with extra args. Staging files (and those kept after a failed
/// upload) go to `cache_dir`, which the test owns: declare it before the mount.
fn mount_via(
    s3: &S3Server,
    bucket: &Bucket,
    proxy: &FaultProxy,
    cache_dir: &tempfile::TempDir,
    args: &[&str],
) -> Mount {
    Mount::builder(s3, bucket.name())
        .endpoint_url(&proxy.endpoint())
        .arg("--cache-dir")
        .arg(cache_dir.path())
        .args(args)
        .mount()
}

// ---------------------------------------------------------------------------------------------
// the fault proxy itself
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// creating and writing files
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sizes_around_part_boundaries_round_trip() {
    let Served { s3, bucket } = Served::new().await;
    let mut mount = Mount::new(&s3, bucket.name(), &["--write-part-size", PART_ARG]);
    let sizes = [0, 1, PART - 1, PART, PART + 1, 2 * PART + 7];
    for (i, &size) in sizes.iter().enumerate() {
        let data = pseudo_random_bytes(size, i as u64 + 1);
        let name = format!("size-{size}.bin");
        must_write(&mount.join(&name), &data);
        // the object is in the bucket once close returned
        assert_same_bytes(
            &bucket.get(&name).await,
            &data,
            &format!("S3 body of {name}"),
        );
        let etag = etag(&bucket, &name).await;
        if size < PART {
            assert!(
                !etag.contains('-'),
                "{name}: smaller than a part, one PutObject expected (ETag {etag})"
            );
        } else if size > PART {
            let parts = size.div_ceil(PART);
            assert!(
                etag.trim_matches('"').ends_with(&format!("-{parts}")),
                "{name}: expected a {parts}-part upload of --write-part-size parts (ETag {etag})"
            );
        }
        assert_eq!(fs::metadata(mount.join(&name)).unwrap().len(), size as u64);
    }
    mount.remount();
    for (i, &size) in sizes.iter().enumerate() {
        let data = pseudo_random_bytes(size, i as u64 + 1);
        let name = format!("size-{size}.bin");
        assert_same_bytes(
            &fs::read(mount.join(&name)).unwrap(),
            &data,
            &format!("{name} read back after remount"),
        );
    }
}

#[tokio::test]
async fn content_type_is_guessed_from_the_name() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &["--write-part-size", PART_ARG]);
    must_write(&mount.join("notes.txt"), b"plain\n");
    must_write(&mount.join("data.json"), b"{}\n");
    must_write(&mount.join("page.html"), b"<p>\n");
    must_write(&mount.join("blob"), b"\x00\x01");
    // a multipart upload carries it too
    must_write(&mount.join("large.txt"), &vec![b'a'; PART + 1]);
    assert_eq!(content_type(&bucket, "notes.txt").await, "text/plain");
    assert_eq!(content_type(&bucket, "data.json").await, "application/json");
    assert_eq!(content_type(&bucket, "page.html").await, "text/html");
    assert_eq!(
        content_type(&bucket, "blob").await,
        "application/octet-stream"
    );
    assert_eq!(content_type(&bucket, "large.txt").await, "text/plain");
}

#[tokio::test]
async fn overwrite_with_o_trunc_replaces_the_content() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "f.txt",
            b"the old content, longer than the new one\n",
            &[("mode", "33152"), ("color", "blue")],
            &[],
            Some("text/plain"),
        )
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    must_write(&mount.join("f.txt"), b"new\n");
    assert_eq!(bucket.get("f.txt").await, b"new\n");
    assert_eq!(fs::read(mount.join("f.txt")).unwrap(), b"new\n");
    // the file's mode and other metadata are the file's, not the content's
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("color").map(String::as_str),
        Some("blue"),
        "{meta:?}"
    );
    // overwrite with shell redirection too
    sh(mount.path(), "echo replaced > f.txt");
    assert_eq!(bucket.get("f.txt").await, b"replaced\n");
}

#[tokio::test]
async fn appends_with_the_shell_and_with_o_append() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("log.txt", b"line1\n").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    sh(mount.path(), "echo line2 >> log.txt");
    assert_eq!(bucket.get("log.txt").await, b"line1\nline2\n");
    write_with(
        OpenOptions::new().append(true),
        &mount.join("log.txt"),
        b"line3\n",
    )
    .unwrap();
    assert_eq!(bucket.get("log.txt").await, b"line1\nline2\nline3\n");
    // >> on a missing file creates it
    sh(
        mount.path(),
        "echo first >> new.txt && echo second >> new.txt",
    );
    assert_eq!(bucket.get("new.txt").await, b"first\nsecond\n");
    assert_eq!(
        fs::read(mount.join("log.txt")).unwrap(),
        b"line1\nline2\nline3\n"
    );
}

#[tokio::test]
async fn writes_in_the_middle_and_past_the_end() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("mid.bin", vec![b'a'; 100]).await;
    bucket.put("hole.bin", b"abc").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);

    let mut f = OpenOptions::new()
        .write(true)
        .open(mount.join("mid.bin"))
        .unwrap();
    f.seek(SeekFrom::Start(40)).unwrap();
    f.write_all(b"XYZ").unwrap();
    close(f).unwrap();
    let mut want = vec![b'a'; 100];
    want[40..43].copy_from_slice(b"XYZ");
    assert_eq!(bucket.get("mid.bin").await, want);

    let mut f = OpenOptions::new()
        .write(true)
        .open(mount.join("hole.bin"))
        .unwrap();
    f.seek(SeekFrom::Start(10)).unwrap();
    f.write_all(b"Z").unwrap();
    close(f).unwrap();
    assert_eq!(bucket.get("hole.bin").await, b"abc\0\0\0\0\0\0\0Z");
    assert_eq!(
        fs::read(mount.join("hole.bin")).unwrap(),
        b"abc\0\0\0\0\0\0\0Z"
    );

    // a new file written with a hole in front
    let mut f = File::create(mount.join("sparse.bin")).unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(b"end").unwrap();
    close(f).unwrap();
    let mut want = vec![0u8; 4096];
    want.extend_from_slice(b"end");
    assert_eq!(bucket.get("sparse.bin").await, want);
}

#[tokio::test]
async fn truncate_shrinks_and_grows() {
    let Served { s3, bucket } = Served::new().await;
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    bucket.put("t.bin", &body).await;
    bucket.put("ft.bin", &body).await;
    let mount = Mount::new(&s3, bucket.name(), &[]);

    sh(mount.path(), "truncate -s 10 t.bin");
    assert_eq!(bucket.get("t.bin").await, &body[..10]);
    sh(mount.path(), "truncate -s 20 t.bin");
    let mut want = body[..10].to_vec();
    want.resize(20, 0);
    assert_eq!(bucket.get("t.bin").await, want);
    assert_eq!(fs::metadata(mount.join("t.bin")).unwrap().len(), 20);
    sh(mount.path(), "truncate -s 0 t.bin");
    assert_eq!(bucket.get("t.bin").await, b"");

    // ftruncate on an open descriptor, then a write, then close
    let f = OpenOptions::new()
        .write(true)
        .open(mount.join("ft.bin"))
        .unwrap();
    f.set_len(5).unwrap();
    f.set_len(8).unwrap();
    close(f).unwrap();
    let mut want = body[..5].to_vec();
    want.resize(8, 0);
    assert_eq!(bucket.get("ft.bin").await, want);
}

#[tokio::test]
async fn changing_the_last_part_of_a_large_object_copies_the_rest_server_side() {
    let Served { s3, bucket } = Served::new().await;
    let size = 12 * MIB;
    let old = pseudo_random_bytes(size, 42);
    bucket.put("large.bin", &old).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir();
    let mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG, "--debug"],
    );

    let mut f = OpenOptions::new()
        .write(true)
        .open(mount.join("large.bin"))
        .unwrap();
    f.seek(SeekFrom::Start((size - 100) as u64)).unwrap();
    f.write_all(&[b'#'; 50]).unwrap();
    proxy.reset_log();
    close(f).unwrap();

    let mut want = old.clone();
    want[size - 100..size - 50].fill(b'#');
    assert_same_bytes(&bucket.get("large.bin").await, &want, "large.bin in S3");
    let copies = proxy.count_where(|r| r.is_upload_part_copy());
    let uploads = proxy.count_where(|r| r.is_upload_part());
    assert_eq!(
        (copies, uploads),
        (2, 1),
        "parts 1-2 (10 MiB) unchanged should be UploadPartCopy, part 3 uploaded; requests:\n{}",
        proxy.summary()
    );
    assert_eq!(
        proxy.count_where(|r| r.is_complete_multipart()),
        1,
        "{}",
        proxy.summary()
    );
    let uploaded: usize = proxy
        .requests()
        .iter()
        .filter(|r| r.is_upload_part())
        .map(|r| r.body_len)
        .sum();
    assert_eq!(
        uploaded,
        size - 2 * PART,
        "only the last part's bytes are sent"
    );
    assert_same_bytes(
        &fs::read(mount.join("large.bin")).unwrap(),
        &want,
        "large.bin through the mount",
    );
}

#[tokio::test]
async fn a_file_reads_back_before_it_is_closed() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("existing.txt", b"0123456789").await;
    let mount = Mount::new(&s3, bucket.name(), &["--write-part-size", PART_ARG]);

    // a new file, through the same descriptor and through a second one
    let path = mount.join("rw.txt");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    f.write_all(b"hello, ").unwrap();
    f.write_all(b"world").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut back = String::new();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(back, "hello, world", "same descriptor");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"hello, world",
        "second descriptor"
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), 12, "stat while open");
    close(f).unwrap();
    assert_eq!(bucket.get("rw.txt").await, b"hello, world");

    // an existing object changed in the middle
    let path = mount.join("existing.txt");
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(3)).unwrap();
    f.write_all(b"abc").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"012abc6789", "second descriptor");
    close(f).unwrap();
    assert_eq!(bucket.get("existing.txt").await, b"012abc6789");

    // a multipart-sized file whose first part is already streaming
    let path = mount.join("big.bin");
    let data = pseudo_random_bytes(PART + MIB, 3);
    let mut f = File::create(&path).unwrap();
    f.write_all(&data).unwrap();
    assert_same_bytes(&fs::read(&path).unwrap(), &data, "big.bin before close");
    close(f).unwrap();
    assert_same_bytes(&bucket.get("big.bin").await, &data, "big.bin in S3");
}

#[tokio::test]
async fn fsync_returns_once_the_object_is_in_the_bucket() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &["--write-part-size", PART_ARG]);

    let mut f = File::create(mount.join("synced.txt")).unwrap();
    f.write_all(b"first").unwrap();
    f.sync_all().unwrap();
    assert_eq!(
        bucket.try_get("synced.txt").await.as_deref(),
        Some(&b"first"[..])
    );
    f.write_all(b" second").unwrap();
    f.sync_data().unwrap();
    assert_eq!(bucket.get("synced.txt").await, b"first second");
    close(f).unwrap();
    assert_eq!(bucket.get("synced.txt").await, b"first second");

    // a multipart upload, and writing on after the fsync
    let data = pseudo_random_bytes(PART + MIB, 9);
    let mut f = File::create(mount.join("big.bin")).unwrap();
    f.write_all(&data).unwrap();
    f.sync_all().unwrap();
    assert_same_bytes(&bucket.get("big.bin").await, &data, "after fsync");
    let more = pseudo_random_bytes(MIB, 10);
    f.write_all(&more).unwrap();
    close(f).unwrap();
    let mut want = data;
    want.extend_from_slice(&more);
    assert_same_bytes(&bucket.get("big.bin").await, &want, "after close");
}

// ---------------------------------------------------------------------------------------------
// the namespace
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unlink_deletes_the_key() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("gone.txt", b"x").await;
    bucket.put("dir/inner.txt", b"y").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    fs::remove_file(mount.join("gone.txt")).unwrap();
    fs::remove_file(mount.join("dir/inner.txt")).unwrap();
    assert!(!bucket.exists("gone.txt").await);
    assert!(!bucket.exists("dir/inner.txt").await);
    assert!(!mount.join("gone.txt").exists());
    assert_errno(
        fs::remove_file(mount.join("gone.txt")),
        libc::ENOENT,
        "unlink again",
    );
    // a file created and removed through the mount
    must_write(&mount.join("tmp.txt"), b"tmp");
    assert!(bucket.exists("tmp.txt").await);
    fs::remove_file(mount.join("tmp.txt")).unwrap();
    assert!(!bucket.exists("tmp.txt").await);
}

#[tokio::test]
async fn mkdir_and_rmdir_keep_directory_markers() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("implicit/child.txt", b"c").await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);

    fs::create_dir(mount.join("empty")).unwrap();
    assert!(
        bucket.exists("empty/").await,
        "mkdir writes the `empty/` marker"
    );
    assert_eq!(bucket.get("empty/").await, b"");
    fs::create_dir_all(mount.join("p/q/r")).unwrap();
    for k in ["p/", "p/q/", "p/q/r/"] {
        assert!(bucket.exists(k).await, "marker {k}");
    }
    assert_errno(
        fs::create_dir(mount.join("empty")),
        libc::EEXIST,
        "mkdir again",
    );

    mount.remount();
    assert!(mount.join("empty").is_dir(), "an empty directory persists");
    assert_eq!(fs::read_dir(mount.join("empty")).unwrap().count(), 0);
    assert!(mount.join("p/q/r").is_dir());

    must_write(&mount.join("p/q/r/f.txt"), b"f");
    assert_errno(
        fs::remove_dir(mount.join("p/q/r")),
        libc::ENOTEMPTY,
        "rmdir with a file inside",
    );
    assert_errno(
        fs::remove_dir(mount.join("implicit")),
        libc::ENOTEMPTY,
        "rmdir of a directory that only exists as a prefix",
    );
    assert!(bucket.exists("p/q/r/").await && bucket.exists("p/q/r/f.txt").await);

    // a file still being written counts too
    fs::create_dir(mount.join("busy")).unwrap();
    let mut f = File::create(mount.join("busy/open.txt")).unwrap();
    f.write_all(b"not closed yet").unwrap();
    assert_errno(
        fs::remove_dir(mount.join("busy")),
        libc::ENOTEMPTY,
        "rmdir with a file open for writing inside",
    );
    close(f).unwrap();

    fs::remove_file(mount.join("p/q/r/f.txt")).unwrap();
    fs::remove_dir(mount.join("p/q/r")).unwrap();
    assert!(!bucket.exists("p/q/r/").await, "rmdir removes the marker");
    assert!(bucket.exists("p/q/").await);
    fs::remove_dir(mount.join("empty")).unwrap();
    assert!(!bucket.exists("empty/").await);
    assert!(!mount.join("empty").exists());
    assert_errno(
        fs::remove_dir(mount.join("busy/open.txt")),
        libc::ENOTDIR,
        "rmdir of a file",
    );
}

#[tokio::test]
async fn rename_of_a_file_keeps_metadata_and_tags() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "a.txt",
            b"payload\n",
            &[("color", "blue"), ("mode", "33152")],
            &[("team", "storage"), ("env", "test")],
            Some("text/x-custom"),
        )
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    fs::create_dir(mount.join("sub")).unwrap();

    fs::rename(mount.join("a.txt"), mount.join("b.txt")).unwrap();
    assert!(!bucket.exists("a.txt").await, "old key gone");
    assert_eq!(bucket.get("b.txt").await, b"payload\n");
    let meta = bucket.metadata("b.txt").await;
    assert_eq!(
        meta.get("color").map(String::as_str),
        Some("blue"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );
    assert_eq!(
        bucket.tags("b.txt").await,
        tags(&[("team", "storage"), ("env", "test")])
    );
    assert_eq!(content_type(&bucket, "b.txt").await, "text/x-custom");

    // into another directory, with `mv`
    sh(mount.path(), "mv b.txt sub/c.txt");
    assert!(!bucket.exists("b.txt").await);
    assert_eq!(bucket.get("sub/c.txt").await, b"payload\n");
    assert_eq!(
        bucket.tags("sub/c.txt").await,
        tags(&[("team", "storage"), ("env", "test")])
    );
    assert_eq!(
        bucket
            .metadata("sub/c.txt")
            .await
            .get("color")
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(fs::read(mount.join("sub/c.txt")).unwrap(), b"payload\n");
    assert!(!mount.join("a.txt").exists() && !mount.join("b.txt").exists());
}

#[tokio::test]
async fn rename_of_a_directory_moves_every_key() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("d/", b"").await; // the directory's marker
    bucket.put("d/seeded.bin", b"seeded").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    fs::create_dir_all(mount.join("d/sub/empty")).unwrap();
    must_write(&mount.join("d/a.txt"), b"a");
    must_write(&mount.join("d/sub/b.txt"), b"b");
    bucket.put("dx/not-under-d.txt", b"neighbour").await;
    let before = bucket.list_keys("d/").await;
    assert!(before.contains(&"d/".to_string()), "{before:?}");

    fs::rename(mount.join("d"), mount.join("e")).unwrap();
    assert_eq!(
        bucket.list_keys("d/").await,
        Vec::<String>::new(),
        "old keys gone"
    );
    let mut want: Vec<String> = before.iter().map(|k| format!("e/{}", &k[2..])).collect();
    want.sort();
    let mut got = bucket.list_keys("e/").await;
    got.sort();
    assert_eq!(got, want, "every key moved, marker included");
    assert_eq!(bucket.get("e/a.txt").await, b"a");
    assert_eq!(bucket.get("e/sub/b.txt").await, b"b");
    assert_eq!(bucket.get("e/seeded.bin").await, b"seeded");
    assert!(
        bucket.exists("dx/not-under-d.txt").await,
        "a key that merely shares the prefix `d` stays"
    );
    assert!(!mount.join("d").exists());
    assert_eq!(fs::read(mount.join("e/sub/b.txt")).unwrap(), b"b");
    assert!(mount.join("e/sub/empty").is_dir());
}

#[tokio::test]
async fn rename_onto_an_existing_file_replaces_it() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "src.txt",
            b"source",
            &[("from", "src")],
            &[("side", "src")],
            None,
        )
        .await;
    bucket
        .put_with("dst.txt", b"destination", &[("from", "dst")], &[], None)
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    fs::rename(mount.join("src.txt"), mount.join("dst.txt")).unwrap();
    assert!(!bucket.exists("src.txt").await);
    assert_eq!(bucket.get("dst.txt").await, b"source");
    // The source's metadata and tags. (Not tested the other way round: moto 5.2.5 keeps the
    // destination's old tags when CopyObject's source has none, unlike S3.)
    assert_eq!(
        bucket
            .metadata("dst.txt")
            .await
            .get("from")
            .map(String::as_str),
        Some("src")
    );
    assert_eq!(bucket.tags("dst.txt").await, tags(&[("side", "src")]));
    assert_eq!(fs::read(mount.join("dst.txt")).unwrap(), b"source");
}

#[tokio::test]
async fn renameat2_noreplace_and_exchange() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("one.txt", b"one").await;
    bucket.put("two.txt", b"two").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let (one, two) = (mount.join("one.txt"), mount.join("two.txt"));

    assert_errno(
        renameat2(&one, &two, libc::RENAME_NOREPLACE),
        libc::EEXIST,
        "RENAME_NOREPLACE onto an existing file",
    );
    assert_eq!(bucket.get("one.txt").await, b"one");
    assert_eq!(bucket.get("two.txt").await, b"two");

    let r = renameat2(&one, &two, libc::RENAME_EXCHANGE);
    assert!(r.is_err(), "RENAME_EXCHANGE must be refused");
    let e = r.unwrap_err();
    assert!(
        [libc::EINVAL, libc::ENOTSUP, libc::ENOSYS].contains(&errno(&e)),
        "RENAME_EXCHANGE: unexpected error {e}"
    );
    assert_eq!(bucket.get("one.txt").await, b"one", "nothing changed");
    assert_eq!(bucket.get("two.txt").await, b"two", "nothing changed");
    assert_eq!(fs::read(&one).unwrap(), b"one");

    // RENAME_NOREPLACE onto a free name is an ordinary rename
    renameat2(&one, &mount.join("three.txt"), libc::RENAME_NOREPLACE).unwrap();
    assert!(!bucket.exists("one.txt").await);
    assert_eq!(bucket.get("three.txt").await, b"one");
}

// ---------------------------------------------------------------------------------------------
// symlinks and hard links
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn symlinks_are_stored_as_s3fs_stores_them() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("target.txt", b"pointed at").await;
    bucket
        .put_with(
            "s3fs-link",
            b"dir/elsewhere",
            &[("mode", SYMLINK_MODE)],
            &[],
            None,
        )
        .await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);

    sh(mount.path(), "ln -s target.txt link");
    assert_eq!(
        bucket.get("link").await,
        b"target.txt",
        "body is the target"
    );
    let meta = bucket.metadata("link").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some(SYMLINK_MODE),
        "x-amz-meta-mode = S_IFLNK|0777: {meta:?}"
    );
    assert_eq!(
        fs::read_link(mount.join("link")).unwrap(),
        Path::new("target.txt")
    );
    assert_eq!(fs::read(mount.join("link")).unwrap(), b"pointed at");

    mount.remount();
    assert!(fs::symlink_metadata(mount.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_link(mount.join("link")).unwrap(),
        Path::new("target.txt")
    );
    // one written the s3fs way through the SDK
    let md = fs::symlink_metadata(mount.join("s3fs-link")).unwrap();
    assert!(
        md.file_type().is_symlink(),
        "s3fs-style object is a symlink"
    );
    assert_eq!(
        fs::read_link(mount.join("s3fs-link")).unwrap(),
        Path::new("dir/elsewhere")
    );
    // unlink removes the link, not its target
    fs::remove_file(mount.join("link")).unwrap();
    assert!(!bucket.exists("link").await);
    assert!(bucket.exists("target.txt").await);
}

#[tokio::test]
async fn hard_links_are_refused() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("file.txt", b"x").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    assert_errno(
        fs::hard_link(mount.join("file.txt"), mount.join("hard")),
        libc::EPERM,
        "link(2)",
    );
    assert!(!bucket.exists("hard").await);
    assert_eq!(bucket.list_keys("").await, vec!["file.txt".to_string()]);
}

// ---------------------------------------------------------------------------------------------
// attributes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn chmod_chown_and_touch_persist_in_s3fs_headers() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "f.txt",
            b"content\n",
            &[("color", "blue")],
            &[("team", "x")],
            Some("text/plain"),
        )
        .await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);
    let f = mount.join("f.txt");

    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );

    std::os::unix::fs::chown(&f, Some(1234), Some(5678)).unwrap();
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("uid").map(String::as_str),
        Some("1234"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("gid").map(String::as_str),
        Some("5678"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );

    sh(mount.path(), "touch -d '2020-01-02 03:04:05 UTC' f.txt");
    let meta = bucket.metadata("f.txt").await;
    assert_eq!(
        meta.get("mtime").map(String::as_str),
        Some("1577934245"),
        "{meta:?}"
    );
    // everything else kept
    assert_eq!(
        meta.get("color").map(String::as_str),
        Some("blue"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("uid").map(String::as_str),
        Some("1234"),
        "{meta:?}"
    );
    assert_eq!(bucket.get("f.txt").await, b"content\n");
    assert_eq!(bucket.tags("f.txt").await, tags(&[("team", "x")]));
    assert_eq!(content_type(&bucket, "f.txt").await, "text/plain");

    // on a file open for writing, the attributes ride along with the upload
    let mut w = File::create(mount.join("open.txt")).unwrap();
    w.write_all(b"being written").unwrap();
    w.set_permissions(fs::Permissions::from_mode(0o640))
        .unwrap();
    close(w).unwrap();
    assert_eq!(bucket.get("open.txt").await, b"being written");
    let ometa = bucket.metadata("open.txt").await;
    assert_eq!(
        ometa.get("mode").map(String::as_str),
        Some(&*(libc::S_IFREG | 0o640).to_string()),
        "{ometa:?}"
    );

    mount.remount();
    let st = fs::metadata(mount.join("f.txt")).unwrap();
    assert_eq!(st.mode(), libc::S_IFREG | 0o600, "mode after remount");
    assert_eq!((st.uid(), st.gid()), (1234, 5678), "owner after remount");
    assert_eq!(st.mtime(), 1_577_934_245, "mtime after remount");
    assert_eq!(
        fs::metadata(mount.join("open.txt")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(fs::read(&f).unwrap(), b"content\n");
}

#[tokio::test]
async fn directory_attributes_persist_on_the_marker() {
    let Served { s3, bucket } = Served::new().await;
    let mut mount = Mount::new(&s3, bucket.name(), &["--metadata-ttl", "1"]);
    let d = mount.join("d");
    fs::create_dir(&d).unwrap();
    must_write(&mount.join("d/inside.txt"), b"i");

    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&d, Some(4321), Some(8765)).unwrap();
    sh(mount.path(), "touch -d '2020-01-02 03:04:05 UTC' d");
    let meta = bucket.metadata("d/").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some(&*(libc::S_IFDIR | 0o700).to_string()),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("uid").map(String::as_str),
        Some("4321"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("gid").map(String::as_str),
        Some("8765"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mtime").map(String::as_str),
        Some("1577934245"),
        "{meta:?}"
    );
    assert_eq!(bucket.get("d/inside.txt").await, b"i", "content kept");

    // still so once the cached attributes expired, and after a remount
    sleep(Duration::from_millis(1500));
    let st = fs::metadata(&d).unwrap();
    assert_eq!(
        (st.mode(), st.uid(), st.gid(), st.mtime()),
        (libc::S_IFDIR | 0o700, 4321, 8765, 1_577_934_245),
        "directory mode, owner and mtime after the metadata TTL"
    );
    mount.remount();
    let st = fs::metadata(&d).unwrap();
    assert_eq!(
        (st.mode(), st.uid(), st.gid(), st.mtime()),
        (libc::S_IFDIR | 0o700, 4321, 8765, 1_577_934_245),
        "directory mode, owner and mtime after a remount"
    );
}

#[tokio::test]
async fn xattrs_edit_tags_without_rewriting_the_object() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with("x.txt", b"content", &[], &[], Some("text/plain"))
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let x = mount.join("x.txt");
    let etag0 = etag(&bucket, "x.txt").await;

    set_xattr(&x, "user.s3.tag.team", b"blue", 0).unwrap();
    assert_eq!(bucket.tags("x.txt").await, tags(&[("team", "blue")]));
    assert_eq!(get_xattr(&x, "user.s3.tag.team").unwrap(), b"blue");
    assert_eq!(etag(&bucket, "x.txt").await, etag0, "object not rewritten");

    // with the command-line tools
    sh(mount.path(), "setfattr -n user.s3.tag.env -v prod x.txt");
    assert_eq!(
        bucket.tags("x.txt").await,
        tags(&[("team", "blue"), ("env", "prod")])
    );
    let dump = sh(mount.path(), "getfattr -d x.txt");
    assert!(
        dump.contains("user.s3.tag.team=\"blue\"") && dump.contains("user.s3.tag.env=\"prod\""),
        "getfattr -d:\n{dump}"
    );

    // XATTR_CREATE / XATTR_REPLACE
    assert_errno(
        set_xattr(&x, "user.s3.tag.team", b"red", libc::XATTR_CREATE),
        libc::EEXIST,
        "XATTR_CREATE on an existing tag",
    );
    assert_errno(
        set_xattr(&x, "user.s3.tag.nope", b"v", libc::XATTR_REPLACE),
        libc::ENODATA,
        "XATTR_REPLACE on a missing tag",
    );
    set_xattr(&x, "user.s3.tag.team", b"green", libc::XATTR_REPLACE).unwrap();
    assert_eq!(
        bucket.tags("x.txt").await,
        tags(&[("team", "green"), ("env", "prod")])
    );

    remove_xattr(&x, "user.s3.tag.team").unwrap();
    assert_eq!(bucket.tags("x.txt").await, tags(&[("env", "prod")]));
    assert_errno(
        remove_xattr(&x, "user.s3.tag.team"),
        libc::ENODATA,
        "removing a missing tag",
    );
    assert_eq!(bucket.get("x.txt").await, b"content");
    assert_eq!(
        etag(&bucket, "x.txt").await,
        etag0,
        "object never rewritten"
    );

    // removing the last tag leaves an empty tag set
    sh(mount.path(), "setfattr -x user.s3.tag.env x.txt");
    assert_eq!(bucket.tags("x.txt").await, Vec::new());
    assert_eq!(etag(&bucket, "x.txt").await, etag0);
}

#[tokio::test]
async fn xattrs_edit_metadata_and_content_type() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put_with(
            "m.txt",
            b"content",
            &[("keep", "me")],
            &[("team", "x")],
            Some("text/plain"),
        )
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let m = mount.join("m.txt");

    set_xattr(&m, "user.s3.meta.color", b"red", 0).unwrap();
    let meta = bucket.metadata("m.txt").await;
    assert_eq!(
        meta.get("color").map(String::as_str),
        Some("red"),
        "{meta:?}"
    );
    assert_eq!(meta.get("keep").map(String::as_str), Some("me"), "{meta:?}");
    assert_eq!(bucket.get("m.txt").await, b"content", "content unchanged");
    assert_eq!(
        bucket.tags("m.txt").await,
        tags(&[("team", "x")]),
        "tags kept"
    );
    assert_eq!(content_type(&bucket, "m.txt").await, "text/plain");
    assert_eq!(get_xattr(&m, "user.s3.meta.color").unwrap(), b"red");

    assert_errno(
        set_xattr(&m, "user.s3.meta.color", b"blue", libc::XATTR_CREATE),
        libc::EEXIST,
        "XATTR_CREATE on existing metadata",
    );
    assert_errno(
        set_xattr(&m, "user.s3.meta.missing", b"v", libc::XATTR_REPLACE),
        libc::ENODATA,
        "XATTR_REPLACE on missing metadata",
    );
    assert_eq!(
        bucket
            .metadata("m.txt")
            .await
            .get("color")
            .map(String::as_str),
        Some("red")
    );

    set_xattr(&m, "user.s3.content-type", b"application/x-s3mount-test", 0).unwrap();
    assert_eq!(
        content_type(&bucket, "m.txt").await,
        "application/x-s3mount-test"
    );
    assert_eq!(
        bucket.tags("m.txt").await,
        tags(&[("team", "x")]),
        "tags kept"
    );
    assert_eq!(
        bucket
            .metadata("m.txt")
            .await
            .get("color")
            .map(String::as_str),
        Some("red")
    );

    remove_xattr(&m, "user.s3.meta.color").unwrap();
    let meta = bucket.metadata("m.txt").await;
    assert!(!meta.contains_key("color"), "{meta:?}");
    assert_eq!(meta.get("keep").map(String::as_str), Some("me"), "{meta:?}");

    let etag_before = etag(&bucket, "m.txt").await;
    assert_errno(
        set_xattr(&m, "user.s3.etag", b"\"forged\"", 0),
        libc::EPERM,
        "user.s3.etag is read-only",
    );
    assert_eq!(etag(&bucket, "m.txt").await, etag_before);
    assert_eq!(bucket.get("m.txt").await, b"content");
}

#[tokio::test]
async fn xattrs_respect_s3_limits() {
    let Served { s3, bucket } = Served::new().await;
    let ten: Vec<(String, String)> = (0..10)
        .map(|i| (format!("t{i}"), format!("v{i}")))
        .collect();
    let ten_ref: Vec<(&str, &str)> = ten.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    bucket
        .put_with("full.txt", b"ten tags", &[], &ten_ref, None)
        .await;
    bucket
        .put_with("meta.txt", b"some metadata", &[("small", "1")], &[], None)
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let full = mount.join("full.txt");
    let mut want = ten.clone();
    want.sort();

    assert_errno(
        set_xattr(&full, "user.s3.tag.eleventh", b"x", 0),
        libc::ENOSPC,
        "an 11th tag",
    );
    assert_eq!(bucket.tags("full.txt").await, want, "tag set unchanged");

    let v256 = "v".repeat(256);
    set_xattr(&full, "user.s3.tag.t0", v256.as_bytes(), 0).expect("a 256-character value");
    want[0].1 = v256.clone();
    assert_eq!(bucket.tags("full.txt").await, want);
    assert_errno(
        set_xattr(&full, "user.s3.tag.t1", "w".repeat(257).as_bytes(), 0),
        libc::E2BIG,
        "a 257-character tag value",
    );
    assert_errno(
        set_xattr(&full, &format!("user.s3.tag.{}", "k".repeat(129)), b"v", 0),
        libc::E2BIG,
        "a 129-character tag key",
    );
    assert_eq!(bucket.tags("full.txt").await, want, "tag set unchanged");

    let m = mount.join("meta.txt");
    let etag_before = etag(&bucket, "meta.txt").await;
    assert_errno(
        set_xattr(&m, "user.s3.meta.big", "x".repeat(2100).as_bytes(), 0),
        libc::E2BIG,
        "over 2 KB of user metadata",
    );
    let meta = bucket.metadata("meta.txt").await;
    assert!(!meta.contains_key("big"), "{meta:?}");
    assert_eq!(
        etag(&bucket, "meta.txt").await,
        etag_before,
        "object untouched"
    );
    set_xattr(&m, "user.s3.meta.fits", "y".repeat(1000).as_bytes(), 0).unwrap();
    assert_eq!(
        bucket
            .metadata("meta.txt")
            .await
            .get("fits")
            .map(String::len),
        Some(1000)
    );
    assert_eq!(bucket.get("meta.txt").await, b"some metadata");
}

// ---------------------------------------------------------------------------------------------
// real tools
// ---------------------------------------------------------------------------------------------

/// A local tree: a.txt, run.sh, sub/b.json, sub/deeper/c.bin (6 MiB), empty/.
fn make_local_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let files = vec![
        ("a.txt".to_string(), b"alpha\n".to_vec()),
        ("run.sh".to_string(), b"#!/bin/sh\necho hi\n".to_vec()),
        ("sub/b.json".to_string(), b"{\"b\": 1}\n".to_vec()),
        (
            "sub/deeper/c.bin".to_string(),
            pseudo_random_bytes(6 * MIB, 77),
        ),
    ];
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    for (name, data) in &files {
        fs::write(root.join(name), data).unwrap();
    }
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    files
}

#[track_caller]
fn assert_diff_clean(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .expect("run diff");
    assert!(
        out.status.success(),
        "diff -r {} {}:\n{}{}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn cp_r_copies_a_local_tree() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let local = local_tempdir();
    let src = local.path().join("src");
    let files = make_local_tree(&src);

    let out = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(mount.join("dst"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cp -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut keys = bucket.list_keys("dst/").await;
    keys.sort();
    assert_eq!(
        keys,
        [
            "dst/",
            "dst/a.txt",
            "dst/empty/",
            "dst/run.sh",
            "dst/sub/",
            "dst/sub/b.json",
            "dst/sub/deeper/",
            "dst/sub/deeper/c.bin"
        ]
    );
    for (name, data) in &files {
        assert_same_bytes(
            &bucket.get(&format!("dst/{name}")).await,
            data,
            &format!("dst/{name} in S3"),
        );
    }
    assert_eq!(
        content_type(&bucket, "dst/sub/b.json").await,
        "application/json"
    );
    assert_diff_clean(&src, &mount.join("dst"));
}

#[tokio::test]
async fn rsync_a_keeps_modes_and_times_and_a_second_run_transfers_nothing() {
    let Served { s3, bucket } = Served::new().await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);
    let local = local_tempdir();
    let src = local.path().join("src");
    let files = make_local_tree(&src);
    fs::set_permissions(src.join("a.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    // a fixed past time on everything (directories last)
    sh(
        &src,
        "find . -type f -exec touch -d '2021-06-01 12:00:00 UTC' {} + && \
         find . -depth -type d -exec touch -d '2021-06-01 12:00:00 UTC' {} +",
    );
    let dst = mount.join("dst");
    let rsync = |extra: &str| {
        sh(
            local.path(),
            &format!("rsync -a {extra} src/ '{}/'", dst.display()),
        )
    };
    rsync("");

    for (name, data) in &files {
        assert_same_bytes(
            &bucket.get(&format!("dst/{name}")).await,
            data,
            &format!("dst/{name} in S3"),
        );
    }
    let meta = bucket.metadata("dst/a.txt").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33152"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mtime").map(String::as_str),
        Some("1622548800"),
        "{meta:?}"
    );
    let meta = bucket.metadata("dst/run.sh").await;
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33261"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mtime").map(String::as_str),
        Some("1622548800"),
        "{meta:?}"
    );
    let keys = bucket.list_keys("").await;
    assert!(
        !keys.iter().any(|k| k.contains("/.") || k.starts_with('.')),
        "no rsync temp file left: {keys:?}"
    );
    assert_diff_clean(&src, &dst);

    let again = rsync("--itemize-changes");
    assert_eq!(again.trim(), "", "second rsync -a should transfer nothing");
    mount.remount();
    let again = rsync("--itemize-changes");
    assert_eq!(
        again.trim(),
        "",
        "after a remount, rsync -a should still transfer nothing"
    );
}

#[tokio::test]
async fn tar_x_extracts_into_the_bucket() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let local = local_tempdir();
    let src = local.path().join("tree");
    let files = make_local_tree(&src);
    sh(&src, "ln -s sub/b.json link.json");
    sh(
        &src,
        "find . -type f -exec touch -d '2019-05-05 05:05:05 UTC' {} +",
    );
    sh(local.path(), "tar cf tree.tar tree");
    let tarball = local.path().join("tree.tar");
    sh(mount.path(), &format!("tar xf '{}'", tarball.display()));

    for (name, data) in &files {
        assert_same_bytes(
            &bucket.get(&format!("tree/{name}")).await,
            data,
            &format!("tree/{name} in S3"),
        );
    }
    assert_eq!(bucket.get("tree/link.json").await, b"sub/b.json");
    assert_eq!(
        bucket
            .metadata("tree/link.json")
            .await
            .get("mode")
            .map(String::as_str),
        Some(SYMLINK_MODE)
    );
    assert!(bucket.exists("tree/empty/").await, "empty directory kept");
    assert_eq!(
        bucket
            .metadata("tree/a.txt")
            .await
            .get("mtime")
            .map(String::as_str),
        Some("1557032705"),
        "tar restores mtime"
    );
    assert_eq!(
        bucket
            .metadata("tree/run.sh")
            .await
            .get("mode")
            .map(String::as_str),
        Some("33261"),
        "tar restores the mode"
    );
    assert_diff_clean(&src, &mount.join("tree"));
}

#[tokio::test]
async fn mv_moves_a_directory_tree() {
    let Served { s3, bucket } = Served::new().await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    sh(
        mount.path(),
        "mkdir -p a/b/c a/empty && echo 1 > a/one.txt && echo 2 > a/b/two.txt && \
         echo 3 > a/b/c/three.txt",
    );
    let before = bucket.list_keys("a/").await;
    sh(mount.path(), "mv a z");
    assert_eq!(bucket.list_keys("a/").await, Vec::<String>::new());
    let mut want: Vec<String> = before.iter().map(|k| format!("z/{}", &k[2..])).collect();
    want.sort();
    let mut got = bucket.list_keys("z/").await;
    got.sort();
    assert_eq!(got, want);
    for k in ["z/", "z/empty/", "z/b/c/"] {
        assert!(got.contains(&k.to_string()), "{k} in {got:?}");
    }
    assert_eq!(bucket.get("z/b/c/three.txt").await, b"3\n");

    // from a local directory into the mount (copy, then remove the source)
    let local = local_tempdir();
    let src = local.path().join("moving");
    let files = make_local_tree(&src);
    let reference = local.path().join("reference");
    sh(local.path(), "cp -a moving reference");
    sh(
        local.path(),
        &format!("mv moving '{}'", mount.join("moved").display()),
    );
    assert!(!src.exists());
    for (name, data) in &files {
        assert_same_bytes(
            &bucket.get(&format!("moved/{name}")).await,
            data,
            &format!("moved/{name}"),
        );
    }
    assert_diff_clean(&reference, &mount.join("moved"));
}

#[tokio::test]
async fn sed_i_edits_in_place() {
    let Served { s3, bucket } = Served::new().await;
    bucket
        .put("conf/app.conf", b"name=demo\nport=80\nmode=test\n")
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    sh(mount.path(), "sed -i 's/port=80/port=8080/' conf/app.conf");
    assert_eq!(
        bucket.get("conf/app.conf").await,
        b"name=demo\nport=8080\nmode=test\n"
    );
    sh(mount.path(), "sed -i '/mode=/d' conf/app.conf");
    assert_eq!(bucket.get("conf/app.conf").await, b"name=demo\nport=8080\n");
    assert_eq!(
        bucket.list_keys("").await,
        vec!["conf/app.conf".to_string()],
        "no temporary file left behind"
    );
}

#[tokio::test]
async fn rm_r_removes_a_tree() {
    let Served { s3, bucket } = Served::new().await;
    for k in [
        "t/",
        "t/a.txt",
        "t/b/c.txt",
        "t/d/",
        "t/d/e/f.txt",
        "keep.txt",
    ] {
        bucket
            .put(k, if k.ends_with('/') { &b""[..] } else { b"x" })
            .await;
    }
    let mount = Mount::new(&s3, bucket.name(), &[]);
    sh(
        mount.path(),
        "mkdir -p t/new/deeper && echo n > t/new/deeper/n.txt",
    );
    sh(mount.path(), "rm -r t");
    assert_eq!(bucket.list_keys("t/").await, Vec::<String>::new());
    assert_eq!(bucket.list_keys("").await, vec!["keep.txt".to_string()]);
    assert!(!mount.join("t").exists());
}

// ---------------------------------------------------------------------------------------------
// failures reach the application, and nothing is lost
// ---------------------------------------------------------------------------------------------

/// How long a background retry (release after a failed close) may take: 5 attempts with
/// exponential backoff, several requests.
const RETRY_WINDOW: Duration = Duration::from_secs(90);

#[tokio::test]
async fn failed_put_gives_eio_on_close_and_fsync_and_keeps_the_old_object() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("f.txt", b"old\n").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir();
    let mount = mount_via(&s3, &bucket, &proxy, &cache, &["--debug"]);
    let path = mount.join("f.txt");

    let rule = proxy.fail(Rule::new("PUT", "", Fault::Status500));
    let err = write_file(&path, b"new\n").expect_err("close must report the failed upload");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    assert!(
        proxy.faulted() >= 5,
        "the upload was retried:\n{}",
        proxy.summary()
    );
    assert_eq!(
        bucket.get("f.txt").await,
        b"old\n",
        "previous object intact"
    );
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());

    // release retries once more, then keeps the bytes and says where
    let log = wait_for_log(&mount, "kept at", 0, RETRY_WINDOW);
    let kept = kept_path(&log).expect("path of the kept staging file in the log");
    assert_eq!(
        fs::read(&kept).unwrap_or_default(),
        b"new\n",
        "the written bytes are kept at {}",
        kept.display()
    );
    assert!(
        kept.starts_with(cache.path()),
        "staging files live under --cache-dir {}, not {}",
        cache.path().display(),
        kept.display()
    );
    assert_eq!(bucket.get("f.txt").await, b"old\n", "still intact");
    let _ = fs::remove_file(&kept);

    proxy.remove(rule);
    must_write(&path, b"newer\n");
    assert_eq!(
        bucket.get("f.txt").await,
        b"newer\n",
        "works again once the fault is gone"
    );

    // fsync reports it too
    let before_logs = log_count(&mount, "kept at");
    let rule = proxy.fail(Rule::new("PUT", "", Fault::Status503));
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(b"never committed\n").unwrap();
    let err = f
        .sync_all()
        .expect_err("fsync must report the failed upload");
    assert_eq!(errno(&err), libc::EIO, "fsync: {err}");
    assert_eq!(bucket.get("f.txt").await, b"newer\n");
    let err = close(f).expect_err("close after a failed fsync, still failing");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    wait_for_log(&mount, "kept at", before_logs, RETRY_WINDOW);
    proxy.remove(rule);
    assert_eq!(bucket.get("f.txt").await, b"newer\n");
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());
}

#[tokio::test]
async fn failed_multipart_upload_is_aborted_and_the_old_object_kept() {
    let Served { s3, bucket } = Served::new().await;
    let old = pseudo_random_bytes(PART + MIB, 1);
    bucket.put("big.bin", &old).await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir();
    let mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG, "--debug"],
    );
    let path = mount.join("big.bin");
    let new = pseudo_random_bytes(2 * PART + MIB, 2);

    // every UploadPart fails
    let rule = proxy.fail(Rule::new("PUT", "partNumber=", Fault::Status500));
    let err = write_file(&path, &new).expect_err("close must fail");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    assert_same_bytes(
        &bucket.get("big.bin").await,
        &old,
        "old object after failed parts",
    );
    wait_for_log(&mount, "kept at", 0, RETRY_WINDOW);
    assert_eq!(
        multipart_uploads(&bucket).await,
        Vec::<String>::new(),
        "aborted; requests:\n{}",
        proxy.summary()
    );
    assert!(proxy.count_where(|r| r.is_abort_multipart()) >= 1);
    proxy.remove(rule);

    // CompleteMultipartUpload fails
    let before_logs = log_count(&mount, "kept at");
    let rule = proxy.fail(Rule::new("POST", "uploadId=", Fault::Status500));
    let err = write_file(&path, &new).expect_err("close must fail");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    assert_same_bytes(
        &bucket.get("big.bin").await,
        &old,
        "old object after failed complete",
    );
    wait_for_log(&mount, "kept at", before_logs, RETRY_WINDOW);
    assert_eq!(
        multipart_uploads(&bucket).await,
        Vec::<String>::new(),
        "aborted; requests:\n{}",
        proxy.summary()
    );
    proxy.remove(rule);

    // and it works once the server behaves
    must_write(&path, &new);
    assert_same_bytes(
        &bucket.get("big.bin").await,
        &new,
        "after the faults are gone",
    );
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());
}

#[tokio::test]
async fn transient_faults_are_ridden_out() {
    let Served { s3, bucket } = Served::new().await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir();
    let mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG],
    );

    proxy.fail(Rule::new("PUT", "", Fault::Status503).times(2));
    must_write(&mount.join("small.txt"), b"small");
    assert_eq!(bucket.get("small.txt").await, b"small");

    proxy.fail(Rule::new("PUT", "partNumber=", Fault::ResetBeforeResponse).times(1));
    proxy.fail(Rule::new("PUT", "partNumber=", Fault::Status500).times(1));
    proxy.fail(Rule::new("POST", "uploads", Fault::Status503).times(1));
    proxy.fail(Rule::new("PUT", "", Fault::Latency(Duration::from_millis(300))).times(2));
    let data = pseudo_random_bytes(2 * PART + 11, 5);
    must_write(&mount.join("big.bin"), &data);
    assert_same_bytes(&bucket.get("big.bin").await, &data, "big.bin");
    assert_eq!(proxy.faulted(), 7, "every rule fired:\n{}", proxy.summary());
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_stopped_server_gives_eio_and_loses_nothing() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("f.txt", b"old\n").await;
    let proxy = FaultProxy::start(s3.endpoint());
    let cache = local_tempdir();
    let mut mount = mount_via(
        &s3,
        &bucket,
        &proxy,
        &cache,
        &["--write-part-size", PART_ARG, "--debug"],
    );

    let mut f = File::create(mount.join("f.txt")).unwrap();
    f.write_all(b"written while the server is down\n").unwrap();
    proxy.set_offline(true);
    let err = close(f).expect_err("close must fail while the server is down");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    let log = wait_for_log(&mount, "kept at", 0, RETRY_WINDOW);
    let kept = kept_path(&log).expect("kept path in the log");
    assert_eq!(
        fs::read(&kept).unwrap_or_default(),
        b"written while the server is down\n"
    );
    let _ = fs::remove_file(&kept);
    proxy.set_offline(false);
    assert_eq!(
        bucket.get("f.txt").await,
        b"old\n",
        "previous object intact"
    );
    assert_eq!(multipart_uploads(&bucket).await, Vec::<String>::new());

    // mid-way through a multipart upload
    let before_logs = log_count(&mount, "kept at");
    let mut f = File::create(mount.join("big.bin")).unwrap();
    f.write_all(&pseudo_random_bytes(PART + MIB, 8)).unwrap();
    proxy.set_offline(true);
    f.write_all(&pseudo_random_bytes(MIB, 9)).unwrap();
    let err = close(f).expect_err("close must fail while the server is down");
    assert_eq!(errno(&err), libc::EIO, "close: {err}");
    wait_for_log(&mount, "kept at", before_logs, RETRY_WINDOW);
    proxy.set_offline(false);
    assert!(!bucket.exists("big.bin").await, "no object appeared");

    // back to normal
    must_write(&mount.join("f.txt"), b"after\n");
    assert_eq!(bucket.get("f.txt").await, b"after\n");

    // The upload was created before the server went away, so its abort could not reach the
    // server then; once the server is back (at the latest when the mount ends) it must not be
    // left behind.
    let left_while_mounted = multipart_uploads(&bucket).await;
    let status = mount.unmount();
    assert!(
        status.is_some_and(|s| s.success()),
        "unmount: {status:?}\n{}",
        mount.stderr()
    );
    assert_eq!(
        multipart_uploads(&bucket).await,
        Vec::<String>::new(),
        "multipart upload left behind after the server came back and the mount ended \
         (while mounted: {left_while_mounted:?}); s3mount's log about it:\n{}",
        mount
            .stderr()
            .lines()
            .filter(|l| l.contains("abort") || l.contains("kept at") || l.contains("upload failed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// interoperability with s3fs (Debian's s3fs-fuse), when it is installed
// ---------------------------------------------------------------------------------------------

/// An `s3fs -f` mount of a moto bucket, unmounted and reaped on drop.
struct S3fsMount {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl S3fsMount {
    fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    fn start(s3: &S3Server, bucket: &str) -> S3fsMount {
        use std::os::unix::process::CommandExt;
        let dir = local_tempdir();
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        let passwd = dir.path().join("passwd");
        fs::write(&passwd, format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}\n")).unwrap();
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o600)).unwrap();
        let mut cmd = Command::new("s3fs");
        hermetic_aws_env(&mut cmd);
        cmd.arg(bucket)
            .arg(&mnt)
            .arg("-f")
            .arg("-o")
            .arg(format!(
                "url={},use_path_request_style,endpoint={REGION},passwd_file={}",
                s3.endpoint(),
                passwd.display()
            ))
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("s3fs.log")).unwrap())
            .stderr(File::create(dir.path().join("s3fs.err")).unwrap());
        // SAFETY: prctl is async-signal-safe; s3fs gets SIGTERM if the test thread dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGTERM as libc::c_ulong,
                    0,
                    0,
                    0,
                );
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn s3fs");
        let mnt = mnt.canonicalize().unwrap();
        let deadline = Instant::now() + MOUNT_TIMEOUT;
        while !is_fuse_mounted(&mnt) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "s3fs exited ({status}): {}",
                    fs::read_to_string(dir.path().join("s3fs.err")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "s3fs did not mount");
            sleep(Duration::from_millis(50));
        }
        S3fsMount { child, dir }
    }
}

impl Drop for S3fsMount {
    fn drop(&mut self) {
        let mnt = self.path();
        force_unmount(&mnt);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if is_fuse_mounted(&mnt) {
            // never let TempDir's cleanup walk into a live mount
            let dir = std::mem::replace(&mut self.dir, local_tempdir());
            let _ = dir.keep();
        }
    }
}

fn have_s3fs() -> bool {
    Command::new("s3fs")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn files_and_symlinks_round_trip_with_s3fs() {
    if !have_s3fs() {
        eprintln!("skipped: s3fs is not installed (apt-get install s3fs)");
        return;
    }
    let Served { s3, bucket } = Served::new().await;

    // s3fs writes, s3mount reads
    {
        let s3fs = S3fsMount::start(&s3, bucket.name());
        sh(
            &s3fs.path(),
            "echo 'from s3fs' > by-s3fs.txt && chmod 600 by-s3fs.txt && \
             ln -s by-s3fs.txt s3fs-link && mkdir s3fs-dir && \
             touch -d '2022-02-02 02:02:02 UTC' by-s3fs.txt",
        );
    }
    assert_eq!(bucket.get("by-s3fs.txt").await, b"from s3fs\n");
    let mount = Mount::new(&s3, bucket.name(), &[]);
    assert_eq!(fs::read(mount.join("by-s3fs.txt")).unwrap(), b"from s3fs\n");
    let st = fs::metadata(mount.join("by-s3fs.txt")).unwrap();
    assert_eq!(st.mode(), libc::S_IFREG | 0o600, "s3fs's mode");
    assert_eq!(st.mtime(), 1_643_767_322, "s3fs's mtime");
    assert_eq!(
        fs::read_link(mount.join("s3fs-link")).unwrap(),
        Path::new("by-s3fs.txt")
    );
    assert_eq!(fs::read(mount.join("s3fs-link")).unwrap(), b"from s3fs\n");
    assert!(mount.join("s3fs-dir").is_dir());

    // s3mount writes, s3fs reads
    sh(
        mount.path(),
        "echo 'from s3mount' > by-s3mount.txt && chmod 640 by-s3mount.txt && \
         ln -s by-s3mount.txt s3mount-link && mkdir s3mount-dir && \
         touch -d '2023-03-03 03:03:03 UTC' by-s3mount.txt",
    );
    drop(mount);
    let s3fs = S3fsMount::start(&s3, bucket.name());
    let p = s3fs.path();
    assert_eq!(
        fs::read(p.join("by-s3mount.txt")).unwrap(),
        b"from s3mount\n"
    );
    let st = fs::metadata(p.join("by-s3mount.txt")).unwrap();
    assert_eq!(st.mode() & 0o7777, 0o640, "s3mount's mode seen by s3fs");
    assert_eq!(st.mtime(), 1_677_812_583, "s3mount's mtime seen by s3fs");
    assert!(fs::symlink_metadata(p.join("s3mount-link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read_link(p.join("s3mount-link")).unwrap(),
        Path::new("by-s3mount.txt")
    );
    assert!(p.join("s3mount-dir").is_dir());
}
