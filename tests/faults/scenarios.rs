//! The fault scenario, per fault kind (500, 503 SlowDown, reset before the response, reset in
//! the middle of the body, truncated body, latency): three rounds of reads and writes while
//! every 4th request gets the fault, then one read and one write while every request gets it,
//! then a round with no fault, which must succeed entirely.

use super::*;

/// Sizes of the files each round reads: empty, small, a few blocks, past the 256 KiB part size
/// these mounts read with, and several parts.
const READ_SIZES: [usize; 5] = [0, 1500, 300 * KIB + 3, MIB + 17, 3 * MIB + 5];

/// Seeds round `r`'s files (`rR/fI`) through the SDK; returns their bytes.
async fn seed_round(bucket: &Bucket, r: usize) -> Vec<(String, Arc<Vec<u8>>)> {
    let mut files = Vec::new();
    for (i, &size) in READ_SIZES.iter().enumerate() {
        let key = format!("r{r}/f{i}.bin");
        let data = Arc::new(pseudo_random_bytes(size, (r * 100 + i) as u64 + 1));
        bucket.put(&key, data.as_slice()).await;
        files.push((key, data));
    }
    files
}

/// One round: list, stat, read whole, read at random offsets, then write each target once.
async fn run_round(
    tally: &mut Tally,
    rig: &Rig,
    files: &[(String, Arc<Vec<u8>>)],
    targets: &mut [Target],
    rng: &mut Rng,
    forwarded: bool,
    big_write: bool,
) {
    let dir = files[0].0.split('/').next().unwrap().to_string();
    let names: BTreeSet<String> = files
        .iter()
        .map(|(k, _)| k.rsplit('/').next().unwrap().to_string())
        .collect();
    check_listing(tally, &rig.mount.join(&dir), &names);
    for (key, data) in files {
        let path = rig.mount.join(key);
        check_stat(tally, &path, data.len() as u64);
        check_full_read(tally, &path, data);
        if !data.is_empty() {
            check_random_preads(tally, &path, data, rng, 6);
        }
    }
    for (i, target) in targets.iter_mut().enumerate() {
        let size = target.committed.len() as u64;
        let kind = match i % 4 {
            0 => {
                let n = rng.range(1, 64 * KIB as u64) as usize;
                WriteKind::Replace(rng.bytes(n))
            }
            1 => WriteKind::Patch(rng.below(size.max(1)), rng.bytes(4 * KIB)),
            2 => WriteKind::Append(rng.bytes(10 * KIB + 7)),
            _ if big_write => WriteKind::Replace(rng.bytes(5 * MIB + 100 * KIB)),
            _ => {
                let n = rng.range(1, 300 * KIB as u64) as usize;
                WriteKind::ReplaceFsync(rng.bytes(n))
            }
        };
        checked_write(tally, rig, target, kind, forwarded).await;
    }
}

/// Every fault kind of the issue, with its name in the figures.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Status500,
    SlowDown503,
    ResetBeforeResponse,
    ResetMidBody,
    TruncatedBody,
    Latency,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Status500 => "500 InternalError",
            Kind::SlowDown503 => "503 SlowDown",
            Kind::ResetBeforeResponse => "reset before response",
            Kind::ResetMidBody => "reset mid-body",
            Kind::TruncatedBody => "truncated body",
            Kind::Latency => "latency",
        }
    }

    fn fault(self) -> Fault {
        match self {
            Kind::Status500 => Fault::Status500,
            Kind::SlowDown503 => Fault::Status503,
            Kind::ResetBeforeResponse => Fault::ResetBeforeResponse,
            Kind::ResetMidBody => Fault::ResetMidBody,
            Kind::TruncatedBody => Fault::TruncatedBody,
            Kind::Latency => Fault::Latency(Duration::from_millis(400)),
        }
    }

    /// Whether the server applies the request before the fault hits the answer.
    fn forwarded(self) -> bool {
        matches!(
            self,
            Kind::ResetMidBody | Kind::TruncatedBody | Kind::Latency
        )
    }
}

/// The fixed script for one fault kind; see the module docs.
async fn fault_scenario(kind: Kind) {
    let started = Instant::now();
    let rounds = if soak() { 8 } else { 3 };
    // 256 KiB GETs and a 1 MiB block cache: reads keep going to S3, so the faults meet them.
    let rig = Rig::new(&["--part-size", "262144", "--cache-size", "1"]).await;
    let mut rng = Rng::new(0xFA017 + kind as u64);
    let mut targets = Vec::new();
    for i in 0..4 {
        let key = format!("w/t{i}.bin");
        let data = pseudo_random_bytes(700 * KIB + i, 900 + i as u64);
        rig.bucket.put(&key, &data).await;
        targets.push(Target {
            key,
            committed: data,
        });
    }
    let mut rounds_files = Vec::new();
    for r in 0..=rounds {
        rounds_files.push(seed_round(&rig.bucket, r).await);
    }
    let untouched_key = "p/never-read.bin";
    let untouched = Arc::new(pseudo_random_bytes(2 * MIB, 77));
    rig.bucket.put(untouched_key, untouched.as_slice()).await;
    let mut tally = Tally::default();

    // 1. Periodic faults: every 4th request, PERIODIC_FAULTS in all.
    let periodic = if soak() {
        PERIODIC_FAULTS * 3
    } else {
        PERIODIC_FAULTS
    };
    rig.proxy.reset_log();
    let rules = add_periodic_faults(&rig.proxy, "", "", kind.fault(), FAULT_EVERY, periodic);
    for files in rounds_files.iter().take(rounds) {
        let big = rng.chance(50);
        run_round(
            &mut tally,
            &rig,
            files,
            &mut targets,
            &mut rng,
            kind.forwarded(),
            big,
        )
        .await;
    }
    for r in rules {
        rig.proxy.remove(r);
    }
    let periodic_faults = rig.proxy.faulted();
    let periodic_requests = rig.proxy.seen();
    rig.assert_healthy("after the periodic faults");

    // 2. Every request faulted: one read of a file never read before and one write, at once.
    //    Both must fail (or, for latency, succeed) within the deadline, never with wrong bytes.
    let mut persistent = String::from("-");
    if !matches!(kind, Kind::Latency) {
        rig.proxy.reset_log();
        let rule = rig.proxy.fail(Rule::new("", "", kind.fault()));
        let t0 = Instant::now();
        let read_path = rig.mount.join(untouched_key);
        let reader = std::thread::spawn(move || {
            let t = Instant::now();
            (fs::read(&read_path), t.elapsed())
        });
        let target = &mut targets[0];
        let new = rng.bytes(20 * KIB);
        let wpath = rig.mount.join(&target.key);
        let k = WriteKind::Replace(new.clone());
        tally.writes += 1;
        let wres = op(
            &mut tally,
            "write while every request fails".into(),
            move || {
                let t = Instant::now();
                (k.run(&wpath), t.elapsed())
            },
        );
        let rres = op(
            &mut tally,
            "read while every request fails".into(),
            move || reader.join().expect("reader thread"),
        );
        tally.reads += 1;
        let in_s3 = rig.bucket.try_get(&target.key).await.unwrap_or_default();
        let mut note = Vec::new();
        if let Some((res, took)) = wres {
            match res {
                Ok(()) => {
                    tally.violations.push(format!(
                        "a write succeeded while every request got {}",
                        kind.name()
                    ));
                    if in_s3 != new {
                        tally.lost("write acknowledged while every request failed".into());
                    }
                    target.committed = in_s3;
                }
                Err(e) => {
                    tally.error(Cat::Write, &e);
                    note.push(format!(
                        "write: {} after {:.1}s",
                        errno_label(os_errno(&e)),
                        took.as_secs_f64()
                    ));
                    if in_s3 == target.committed {
                    } else if in_s3 == new && kind.forwarded() {
                        tally.failed_but_applied += 1;
                        target.committed = in_s3;
                    } else {
                        tally.wrong(format!(
                            "failed write left {} bytes in S3, neither previous nor new",
                            in_s3.len()
                        ));
                    }
                }
            }
        }
        if let Some((res, took)) = rres {
            match res {
                Ok(got) => {
                    if got != *untouched {
                        tally.wrong("read while every request fails".into());
                    }
                    note.push(format!("read: ok after {:.1}s", took.as_secs_f64()));
                }
                Err(e) => {
                    tally.error(Cat::Read, &e);
                    note.push(format!(
                        "read: {} after {:.1}s",
                        errno_label(os_errno(&e)),
                        took.as_secs_f64()
                    ));
                }
            }
        }
        rig.proxy.remove(rule);
        persistent = format!(
            "{} in {:.1}s, {} faults",
            note.join("; "),
            t0.elapsed().as_secs_f64(),
            rig.proxy.faulted()
        );
        rig.assert_healthy("after every request failed");
    }
    let persistent_faults = if matches!(kind, Kind::Latency) {
        0
    } else {
        rig.proxy.faulted()
    };

    // 3. No fault: a full round, every operation must succeed.
    rig.proxy.reset_log();
    let errors_before = tally.error_count();
    let hangs_before = tally.hangs;
    let recovered_files = rounds_files.last().unwrap().clone();
    run_round(
        &mut tally,
        &rig,
        &recovered_files,
        &mut targets,
        &mut rng,
        kind.forwarded(),
        true,
    )
    .await;
    check_full_read(&mut tally, &rig.mount.join(untouched_key), &untouched);
    let recovery_errors = tally.error_count() - errors_before;
    assert_eq!(
        rig.proxy.faulted(),
        0,
        "no fault in the recovery round:\n{}",
        rig.proxy.summary()
    );

    // Every acknowledged write is in S3 at the end.
    for t in &targets {
        let in_s3 = rig.bucket.try_get(&t.key).await.unwrap_or_default();
        if in_s3 != t.committed {
            tally.lost(format!(
                "{} at the end: S3 holds {} bytes, expected {}",
                t.key,
                in_s3.len(),
                t.committed.len()
            ));
        }
    }
    rig.assert_healthy("at the end");

    rig.dump_logs(&format!("fault-{}", kind.name()));
    report_figures(&format!(
        "{} fault=\"{}\" ops={} reads={} writes={} meta={} requests={} faults_injected={} \
         persistent_faults={} errors={} read_errors={} write_errors={} meta_errors={} errors_by_errno={} failed_but_applied={} wrong_bytes={} \
         lost_writes={} hangs={} recovery_errors={} persistent=\"{}\" secs={:.0}",
        figures_prefix("fault"),
        kind.name(),
        tally.ops(),
        tally.reads,
        tally.writes,
        tally.meta,
        periodic_requests,
        periodic_faults + persistent_faults,
        persistent_faults,
        tally.error_count(),
        tally.read_errors,
        tally.write_errors,
        tally.meta_errors,
        tally.errors_text(),
        tally.failed_but_applied,
        tally.wrong_bytes,
        tally.lost_writes,
        tally.hangs,
        recovery_errors,
        persistent,
        started.elapsed().as_secs_f64()
    ));
    assert!(
        tally.violations.is_empty(),
        "{} violation(s) under {}:\n{}\n--- s3mount stderr (tail) ---\n{}",
        tally.violations.len(),
        kind.name(),
        tally.violations.join("\n"),
        tail(&rig.mount.stderr(), 80)
    );
    assert!(periodic_faults > 0, "the periodic faults fired");
    assert_eq!(tally.hangs, hangs_before, "no hang");
    assert_eq!(
        recovery_errors,
        0,
        "once the fault stopped, every operation succeeded ({}); stderr tail:\n{}",
        tally.errors_text(),
        tail(&rig.mount.stderr(), 80)
    );
}

#[tokio::test]
async fn fault_500_internal_error() {
    fault_scenario(Kind::Status500).await;
}

#[tokio::test]
async fn fault_503_slowdown() {
    fault_scenario(Kind::SlowDown503).await;
}

#[tokio::test]
async fn fault_reset_before_response() {
    fault_scenario(Kind::ResetBeforeResponse).await;
}

#[tokio::test]
async fn fault_reset_mid_body() {
    fault_scenario(Kind::ResetMidBody).await;
}

#[tokio::test]
async fn fault_truncated_body() {
    fault_scenario(Kind::TruncatedBody).await;
}

#[tokio::test]
async fn fault_latency() {
    fault_scenario(Kind::Latency).await;
}
