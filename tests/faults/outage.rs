//! The server goes away and comes back; an unresponsive server becomes EIO in a bounded
//! time.

use super::*;

/// Readers and writers run while the server is stopped (the proxy closes its port and every
/// connection) for a few seconds, then started again. Operations caught by the outage fail
/// cleanly (or succeed if their retries outlive it), never with other bytes; acknowledged
/// writes are in S3; everything after the outage succeeds; s3mount stays alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stopped_during_reads_and_writes() {
    let started = Instant::now();
    // Quick run: 2 attempts per request (at most ~1 s of backoff) against a 5 s outage, so
    // operations caught by it fail. Soak run: the default 5 attempts against a 30 s outage.
    let mut args = vec!["--part-size", "262144", "--cache-size", "1"];
    if !soak() {
        args.extend(["--max-attempts", "2"]);
    }
    let rig = Rig::new(&args).await;
    let n_files = 6;
    let mut files = Vec::new();
    for i in 0..n_files {
        let key = format!("o/f{i}.bin");
        let data = Arc::new(pseudo_random_bytes(MIB + i * 1000, 300 + i as u64));
        rig.bucket.put(&key, data.as_slice()).await;
        files.push((key, data));
    }
    let n_writers = 3;
    for w in 0..n_writers {
        rig.bucket.put(&format!("ow/t{w}.bin"), b"initial").await;
    }
    let outage = Duration::from_secs(if soak() { 30 } else { 5 });
    let mut readers = Vec::new();
    let reads_per_reader = if soak() { 60 } else { 12 };
    for r in 0..3u64 {
        let files = files.clone();
        let root = rig.mount.path().to_path_buf();
        readers.push(std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut rng = Rng::new(0x0FF + r);
            for _ in 0..reads_per_reader {
                let (key, data) = rng.pick(&files).clone();
                check_full_read(&mut tally, &root.join(&key), &data);
                sleep(Duration::from_millis(100));
            }
            tally
        }));
    }
    let writes_per_writer = if soak() { 30 } else { 6 };
    let mut writers = Vec::new();
    for w in 0..n_writers {
        let root = rig.mount.path().to_path_buf();
        let endpoint = rig.s3.endpoint().to_string();
        let bucket_name = rig.bucket.name().to_string();
        writers.push(std::thread::spawn(move || {
            let rt = thread_runtime();
            let bucket = bucket_with_own_client(&endpoint, &bucket_name);
            let key = format!("ow/t{w}.bin");
            let path = root.join(&key);
            let mut tally = Tally::default();
            let mut committed = b"initial".to_vec();
            let mut rng = Rng::new(0xBAD + w as u64);
            for i in 0..writes_per_writer {
                let len = if i % 3 == 2 {
                    5 * MIB + 3
                } else {
                    rng.range(1, 300_000) as usize
                };
                let new = rng.bytes(len);
                let k = WriteKind::Replace(new.clone());
                let p = path.clone();
                tally.writes += 1;
                let Some(res) = op(&mut tally, format!("write {key}"), move || k.run(&p)) else {
                    continue;
                };
                let in_s3 = rt.block_on(bucket.try_get(&key)).unwrap_or_default();
                match res {
                    Ok(()) => {
                        if in_s3 != new {
                            tally.lost(format!("{key}: acknowledged write #{i} is not in S3"));
                        }
                    }
                    Err(e) => {
                        tally.error(Cat::Write, &e);
                        if in_s3 == new {
                            tally.failed_but_applied += 1;
                        } else if in_s3 != committed {
                            tally.wrong(format!(
                                "{key}: failed write #{i} ({e}) left {} bytes that are neither \
                                 version",
                                in_s3.len()
                            ));
                        }
                    }
                }
                committed = in_s3;
                sleep(Duration::from_millis(300));
            }
            (tally, committed)
        }));
    }
    sleep(Duration::from_millis(700));
    rig.proxy.set_offline(true);
    let outage_started = Instant::now();
    sleep(outage);
    rig.proxy.set_offline(false);
    let outage_secs = outage_started.elapsed().as_secs_f64();
    rig.assert_healthy("right after the outage");

    // Every worker finishes (each of its calls has its own deadline; this bounds the rest).
    let deadline = Instant::now() + OP_DEADLINE * 3;
    let wait = |finished: &dyn Fn() -> bool| {
        while !finished() {
            assert!(Instant::now() < deadline, "a worker did not finish: a hang");
            sleep(Duration::from_millis(50));
        }
    };
    let mut tally = Tally::default();
    for r in readers {
        wait(&|| r.is_finished());
        merge(&mut tally, r.join().expect("reader thread"));
    }
    let mut finals = Vec::new();
    for w in writers {
        wait(&|| w.is_finished());
        let (t, committed) = w.join().expect("writer thread");
        merge(&mut tally, t);
        finals.push(committed);
    }
    let during = format!(
        "ops={} errors={} ({})",
        tally.ops(),
        tally.error_count(),
        tally.errors_text()
    );

    // After the outage: every read and write succeeds.
    let errors_before = tally.error_count();
    for (key, data) in &files {
        check_full_read(&mut tally, &rig.mount.join(key), data);
    }
    for (w, last) in finals.iter().enumerate() {
        let key = format!("ow/t{w}.bin");
        let mut target = Target {
            key: key.clone(),
            committed: rig.bucket.get(&key).await,
        };
        assert!(
            target.committed == *last,
            "{key} changed after its writer ended"
        );
        checked_write(
            &mut tally,
            &rig,
            &mut target,
            WriteKind::Replace(pseudo_random_bytes(100_000, 9000 + w as u64)),
            true,
        )
        .await;
    }
    let after_errors = tally.error_count() - errors_before;
    rig.dump_logs("offline");
    rig.assert_healthy("after the outage");
    report_figures(&format!(
        "{} settings=\"{}\" outage_secs={outage_secs:.1} reads={} writes={} during_outage=\"{during}\" \
         failed_but_applied={} wrong_bytes={} lost_writes={} hangs={} errors_after={after_errors} \
         secs={:.0}",
        figures_prefix("offline"),
        if soak() { "defaults" } else { "--max-attempts 2" },
        tally.reads,
        tally.writes,
        tally.failed_but_applied,
        tally.wrong_bytes,
        tally.lost_writes,
        tally.hangs,
        started.elapsed().as_secs_f64()
    ));
    assert!(
        tally.violations.is_empty(),
        "violations:\n{}\n--- s3mount stderr (tail) ---\n{}",
        tally.violations.join("\n"),
        tail(&rig.mount.stderr(), 60)
    );
    assert_eq!(
        after_errors,
        0,
        "every operation after the outage succeeds; stderr tail:\n{}",
        tail(&rig.mount.stderr(), 60)
    );
}

fn merge(into: &mut Tally, t: Tally) {
    into.reads += t.reads;
    into.writes += t.writes;
    into.meta += t.meta;
    for (k, v) in t.errors {
        *into.errors.entry(k).or_default() += v;
    }
    into.read_errors += t.read_errors;
    into.write_errors += t.write_errors;
    into.meta_errors += t.meta_errors;
    into.wrong_bytes += t.wrong_bytes;
    into.lost_writes += t.lost_writes;
    into.hangs += t.hangs;
    into.failed_but_applied += t.failed_but_applied;
    into.violations.extend(t.violations);
}

/// The server accepts requests but answers none (every request waits longer than the read
/// timeout): a read fails with EIO within attempts × timeout + backoff, and once the server
/// answers again the same file reads correctly. Short settings (`--read-timeout 2
/// --max-attempts 3`) keep this quick; the soak run also checks the defaults (30 s, 5 attempts)
/// with one slow answer.
#[tokio::test]
async fn an_unresponsive_server_gives_eio_within_the_timeouts() {
    let rig = Rig::new(&["--read-timeout", "2", "--max-attempts", "3"]).await;
    let data = Arc::new(pseudo_random_bytes(MIB, 4242));
    rig.bucket.put("slow/a.bin", data.as_slice()).await;
    rig.bucket.put("slow/b.bin", b"small file").await;
    let path = rig.mount.join("slow/a.bin");
    fs::metadata(&path).expect("stat before the server hangs");
    // 3 attempts × 2 s + backoff (at most 1 s + 2 s): about 9 s at worst.
    let bound = Duration::from_secs(30);

    let rule = rig
        .proxy
        .fail(Rule::new("", "", Fault::Latency(Duration::from_secs(5))));
    let p = path.clone();
    let t = Instant::now();
    let res = with_deadline("read from a hung server", OP_DEADLINE, move || fs::read(&p))
        .expect("a read from a hung server must not hang");
    let read_took = t.elapsed();
    let p = rig.mount.join("slow/b.bin");
    let t = Instant::now();
    let wres = with_deadline("write to a hung server", OP_DEADLINE, move || {
        WriteKind::Replace(b"new".to_vec()).run(&p)
    })
    .expect("a write to a hung server must not hang");
    let write_took = t.elapsed();
    rig.proxy.remove(rule);
    let read_err = res.as_ref().err().map(|e| errno_label(os_errno(e)));
    let write_err = wres.as_ref().err().map(|e| errno_label(os_errno(e)));
    report_figures(&format!(
        "{} settings=\"--read-timeout 2 --max-attempts 3\" read={:?} read_secs={:.1} \
         write={:?} write_secs={:.1}",
        figures_prefix("hung-server"),
        read_err,
        read_took.as_secs_f64(),
        write_err,
        write_took.as_secs_f64()
    ));
    assert_eq!(read_err.as_deref(), Some("EIO"), "read from a hung server");
    assert!(read_took < bound, "EIO took {read_took:?}");
    assert_eq!(write_err.as_deref(), Some("EIO"), "write to a hung server");
    assert!(write_took < bound * 2, "EIO took {write_took:?}");
    assert_eq!(
        rig.bucket.get("slow/b.bin").await,
        b"small file",
        "previous object intact"
    );

    // the server answers again: everything works
    let got = fs::read(&path).expect("read once the server answers");
    assert!(got == *data, "bytes after the hang");
    WriteKind::Replace(b"new".to_vec())
        .run(&rig.mount.join("slow/b.bin"))
        .expect("write once the server answers");
    assert_eq!(rig.bucket.get("slow/b.bin").await, b"new");
    rig.assert_healthy("after the hung server");

    if soak() {
        // defaults: one answer slower than the 30 s read timeout is retried and succeeds
        let mount = Mount::builder(&rig.s3, rig.bucket.name())
            .endpoint_url(&rig.proxy.endpoint())
            .mount();
        let p = mount.join("slow/a.bin");
        fs::metadata(&p).expect("stat");
        rig.proxy.reset_log();
        rig.proxy
            .fail(Rule::new("GET", "slow/a.bin", Fault::Latency(Duration::from_secs(35))).times(1));
        let t = Instant::now();
        let got = with_deadline("read with one 35 s answer", OP_DEADLINE, move || {
            fs::read(&p)
        })
        .expect("no hang")
        .expect("one slow answer is retried");
        assert!(got == *data);
        report_figures(&format!(
            "{} settings=defaults one_35s_answer_read_secs={:.1}",
            figures_prefix("hung-server"),
            t.elapsed().as_secs_f64()
        ));
    }
}
