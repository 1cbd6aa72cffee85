//! An object over 5 GiB, served by a synthetic S3 endpoint ([`SyntheticS3`]) that generates
//! every byte from its offset, read at every offset.

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::*;

/// Size of the synthetic object: over 5 GiB (S3's single-PUT limit) and over 2^32.
const HUGE: u64 = 6 * (1 << 30) + 12_345;
const HUGE_ETAG: &str = "\"5ca1ab1e0000000000000000000000-1\"";

/// The synthetic object's byte at `offset`: the little-endian bytes of a hash of the 8-byte
/// word index, so that a read from the wrong offset can never look right.
fn huge_bytes(offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut word = offset / 8;
    let skip = (offset % 8) as usize;
    while out.len() < len + skip {
        let mut z = word.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5EED;
        z = (z ^ (z >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        out.extend_from_slice(&(z ^ (z >> 29)).to_le_bytes());
        word += 1;
    }
    out.drain(..skip);
    out.truncate(len);
    out
}

/// A minimal S3 endpoint on 127.0.0.1 serving one bucket `huge` with one object `huge.bin` of
/// [`HUGE`] bytes, generated on the fly: ListObjectsV2, HeadObject, ranged GetObject (with
/// If-Match; NoSuchKey for any other key), GetObjectTagging. With `stall` set, a GET sends its headers and half its body,
/// then goes silent (a server that hangs in the middle of a body).
struct SyntheticS3 {
    port: u16,
    stop: Arc<AtomicBool>,
    stall: Arc<AtomicBool>,
    gets: Arc<AtomicU64>,
    full_gets: Arc<AtomicU64>,
}

impl SyntheticS3 {
    fn start() -> SyntheticS3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = SyntheticS3 {
            port,
            stop: Arc::new(AtomicBool::new(false)),
            stall: Arc::new(AtomicBool::new(false)),
            gets: Arc::new(AtomicU64::new(0)),
            full_gets: Arc::new(AtomicU64::new(0)),
        };
        let (stop, stall, gets, full) = (
            s.stop.clone(),
            s.stall.clone(),
            s.gets.clone(),
            s.full_gets.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (stop, stall, gets, full) =
                            (stop.clone(), stall.clone(), gets.clone(), full.clone());
                        std::thread::spawn(move || {
                            let _ = serve_synthetic(conn, &stop, &stall, &gets, &full);
                        });
                    }
                    Err(_) => sleep(Duration::from_millis(5)),
                }
            }
        });
        s
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for SyntheticS3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.stall.store(false, Ordering::SeqCst);
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 && i + 2 <= b.len() - 1 + 1 {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..(i + 3).min(s.len())], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve_synthetic(
    conn: TcpStream,
    stop: &AtomicBool,
    stall: &AtomicBool,
    gets: &AtomicU64,
    full_gets: &AtomicU64,
) -> io::Result<()> {
    use std::io::BufRead;
    conn.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut reader = io::BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        if let Some(n) = headers
            .get("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            let mut body = vec![0u8; n];
            reader.read_exact(&mut body)?;
        }
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: BTreeMap<String, String> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (url_decode(k), url_decode(v))
            })
            .collect();
        let path = url_decode(path);
        let send = |out: &mut TcpStream, status: &str, hdrs: &[(&str, String)], body: &[u8]| {
            let mut head = format!("HTTP/1.1 {status}\r\nx-amz-request-id: SYNTH\r\n");
            for (k, v) in hdrs {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            if !hdrs
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes())?;
            out.write_all(body)
        };
        let object = path == "/huge/huge.bin";
        match (method.as_str(), object) {
            ("GET", false) if path == "/huge" || path == "/huge/" => {
                let prefix = params.get("prefix").cloned().unwrap_or_default();
                let delimiter = params.get("delimiter").cloned().unwrap_or_default();
                let listed = "huge.bin".starts_with(&prefix)
                    && (delimiter.is_empty() || !"huge.bin"[prefix.len()..].contains(&delimiter));
                let contents = if listed {
                    format!(
                        "<Contents><Key>huge.bin</Key><LastModified>2024-01-01T00:00:00.000Z\
                         </LastModified><ETag>{}</ETag><Size>{HUGE}</Size><StorageClass>STANDARD\
                         </StorageClass></Contents>",
                        HUGE_ETAG.replace('"', "&quot;")
                    )
                } else {
                    String::new()
                };
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult \
                     xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>huge</Name>\
                     <Prefix>{prefix}</Prefix><KeyCount>{}</KeyCount><MaxKeys>1000</MaxKeys>\
                     <IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
                    listed as u8
                );
                send(
                    &mut out,
                    "200 OK",
                    &[("Content-Type", "application/xml".into())],
                    body.as_bytes(),
                )?;
            }
            ("HEAD", true) => {
                send(
                    &mut out,
                    "200 OK",
                    &[
                        ("Content-Length", HUGE.to_string()),
                        ("ETag", HUGE_ETAG.into()),
                        ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT".into()),
                        ("Content-Type", "application/octet-stream".into()),
                        ("Accept-Ranges", "bytes".into()),
                    ],
                    b"",
                )?;
            }
            ("GET", true) if params.contains_key("tagging") => {
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging \
                            xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet></TagSet>\
                            </Tagging>";
                send(
                    &mut out,
                    "200 OK",
                    &[("Content-Type", "application/xml".into())],
                    body.as_bytes(),
                )?;
            }
            ("GET", true) => {
                gets.fetch_add(1, Ordering::SeqCst);
                if headers.get("if-match").is_some_and(|m| m != HUGE_ETAG) {
                    send(&mut out, "412 Precondition Failed", &[], b"")?;
                    continue;
                }
                let (start, end) = match headers.get("range").and_then(|r| r.strip_prefix("bytes="))
                {
                    Some(r) => {
                        let (a, b) = r.split_once('-').unwrap_or((r, ""));
                        let a: u64 = a.parse().unwrap_or(0);
                        let b: u64 = b.parse().unwrap_or(HUGE - 1).min(HUGE - 1);
                        (a, b + 1)
                    }
                    None => {
                        full_gets.fetch_add(1, Ordering::SeqCst);
                        (0, HUGE)
                    }
                };
                let len = end - start;
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\nx-amz-request-id: SYNTH\r\nContent-Length: \
                     {len}\r\nContent-Range: bytes {start}-{}/{HUGE}\r\nETag: {HUGE_ETAG}\r\n\
                     Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: \
                     application/octet-stream\r\n\r\n",
                    end - 1
                );
                out.write_all(head.as_bytes())?;
                let stall_at = if stall.load(Ordering::SeqCst) {
                    start + len / 2
                } else {
                    u64::MAX
                };
                let mut pos = start;
                while pos < end {
                    if pos >= stall_at {
                        out.flush()?;
                        // silent until the test ends or lifts the stall; then drop the
                        // connection without finishing the body
                        while stall.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                            sleep(Duration::from_millis(50));
                        }
                        return Ok(());
                    }
                    let n = (end - pos)
                        .min(256 * 1024)
                        .min(stall_at.saturating_sub(pos).max(1));
                    out.write_all(&huge_bytes(pos, n as usize))?;
                    pos += n;
                }
            }
            ("HEAD", false) => send(&mut out, "404 Not Found", &[], b"")?,
            ("GET", false) => {
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey\
                            </Code><Message>no such key</Message></Error>";
                send(
                    &mut out,
                    "404 Not Found",
                    &[("Content-Type", "application/xml".into())],
                    body.as_bytes(),
                )?;
            }
            _ => {
                let body =
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NotImplemented\
                            </Code><Message>synthetic server</Message></Error>";
                send(
                    &mut out,
                    "501 Not Implemented",
                    &[("Content-Type", "application/xml".into())],
                    body.as_bytes(),
                )?;
            }
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
}

/// An object over 5 GiB (and over 2^32 bytes): its size shows exactly in stat and `ls -l`,
/// reads at offsets around 2^31, 2^32, 5 GiB and the end return the right bytes (each byte
/// depends on its offset), reads past the end return nothing, and every GET is ranged.
/// moto would have to hold 6 GiB; a synthetic endpoint generates the bytes instead.
/// Then the server stalls in the middle of a body: the read fails within the deadline
/// (no hang), and once the server is back, the same bytes read correctly.
#[tokio::test]
async fn an_object_over_5_gib_reads_at_every_offset() {
    let server = SyntheticS3::start();
    let mount = Mount::builder_for_endpoint(&server.endpoint(), "huge")
        .args(["--debug", "--read-timeout", "5", "--max-attempts", "2"])
        .mount();
    let path = mount.join("huge.bin");
    let m = fs::metadata(&path).expect("stat of the huge object");
    assert_eq!(m.len(), HUGE, "st_size of a {HUGE}-byte object");
    let (ok, out) = {
        let o = Command::new("ls")
            .arg("-ln")
            .arg(mount.path())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert!(
        ok && out.contains(&HUGE.to_string()),
        "ls -l shows the size:\n{out}"
    );

    let file = File::open(&path).unwrap();
    let offsets: [(u64, usize); 9] = [
        (0, 4096),
        ((1 << 31) - 5, 10),
        ((1 << 32) - 7, 4096 + 14),
        (1 << 32, 100),
        (5 * (1 << 30) - 3, 70_000),
        (5 * (1 << 30) + 12_345, MIB),
        (HUGE - 100, 100),
        (HUGE - 10, 4096),
        (HUGE, 10),
    ];
    for (off, len) in offsets {
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while got < len {
            let n = file
                .read_at(&mut buf[got..], off + got as u64)
                .unwrap_or_else(|e| panic!("pread at {off}: {e}"));
            if n == 0 {
                break;
            }
            got += n;
        }
        let want_len = HUGE.saturating_sub(off).min(len as u64) as usize;
        assert_eq!(got, want_len, "bytes returned at offset {off}");
        assert!(
            buf[..got] == huge_bytes(off, got)[..],
            "bytes at offset {off}, length {len}"
        );
    }
    // 8 MiB sequentially from 5 GiB
    let mut f = File::open(&path).unwrap();
    let mut seq = vec![0u8; 8 * MIB];
    std::io::Seek::seek(&mut f, io::SeekFrom::Start(5 << 30)).unwrap();
    f.read_exact(&mut seq).unwrap();
    assert!(
        seq == huge_bytes(5 << 30, 8 * MIB),
        "sequential 8 MiB at 5 GiB"
    );
    assert_eq!(
        server.full_gets.load(Ordering::SeqCst),
        0,
        "every GET is ranged"
    );

    // the server stalls in the middle of a body
    server.stall.store(true, Ordering::SeqCst);
    let off = 3 * (1 << 30) + 777;
    let p = path.clone();
    let t = Instant::now();
    let stalled = with_deadline("read from a stalled body", OP_DEADLINE, move || {
        let f = File::open(&p)?;
        let mut buf = vec![0u8; 64 * KIB];
        f.read_exact_at(&mut buf, off).map(|_| buf)
    });
    let stalled_secs = t.elapsed().as_secs_f64();
    server.stall.store(false, Ordering::SeqCst);
    let stalled_result = match &stalled {
        Err(h) => format!("HANG ({h})"),
        Ok(Ok(buf)) => {
            assert!(*buf == huge_bytes(off, buf.len()), "bytes after a stall");
            "ok".into()
        }
        Ok(Err(e)) => errno_label(os_errno(e)),
    };
    // once the server answers again, the same bytes read
    let p = path.clone();
    let after = with_deadline("read after the stall", OP_DEADLINE, move || {
        let f = File::open(&p)?;
        let mut buf = vec![0u8; 64 * KIB];
        f.read_exact_at(&mut buf, off).map(|_| buf)
    });
    let after_result = match &after {
        Err(h) => format!("HANG ({h})"),
        Ok(Ok(buf)) => {
            assert!(*buf == huge_bytes(off, buf.len()), "bytes after the stall");
            "ok".into()
        }
        Ok(Err(e)) => errno_label(os_errno(e)),
    };
    report_figures(&format!(
        "{} size={HUGE} offsets_checked={} ranged_gets={} stalled_body_read={stalled_result} \
         stalled_secs={stalled_secs:.1} read_after_stall={after_result}",
        figures_prefix("huge-object"),
        offsets.len() + 1,
        server.gets.load(Ordering::SeqCst)
    ));
    dump_mount_log(&mount, "huge-object");
    assert!(
        stalled.is_ok(),
        "a read from a body that stalls must not hang: {stalled_result}"
    );
    assert_eq!(after_result, "ok", "the read after the stall must succeed");
    assert_no_panic(&mount, "after the huge object");
}
