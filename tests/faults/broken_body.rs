//! A failed GET body, then the same bytes again.

use super::*;

/// One GET whose body breaks off (truncated, or reset mid-body), then no fault at all: the
/// read that met the fault may fail, but the next read of the same bytes must fetch them again
/// and succeed. (A block whose fetch failed mid-body must not stay "in flight" for ever.)
#[tokio::test]
async fn a_broken_get_body_does_not_poison_later_reads() {
    let rig = Rig::new(&["--part-size", "262144"]).await;
    let mut outcomes = Vec::new();
    for (i, fault) in [Fault::TruncatedBody, Fault::ResetMidBody]
        .into_iter()
        .enumerate()
    {
        let key = format!("poison/{i}.bin");
        let data = pseudo_random_bytes(MIB, 500 + i as u64);
        rig.bucket.put(&key, &data).await;
        let path = rig.mount.join(&key);
        // look the file up first, so that only the GET meets the fault
        fs::metadata(&path).expect("stat before the fault");
        rig.proxy.fail(Rule::new("GET", "poison/", fault).times(1));
        let p = path.clone();
        let first = with_deadline("read with one broken GET", OP_DEADLINE, move || {
            fs::read(&p)
        })
        .expect("no hang");
        match &first {
            Ok(got) => assert!(
                *got == data,
                "{fault:?}: a successful read returned other bytes"
            ),
            Err(e) => eprintln!("{fault:?}: first read failed with {e} (allowed)"),
        }
        assert_eq!(
            rig.proxy.faulted(),
            i + 1,
            "the fault fired:\n{}",
            rig.proxy.summary()
        );
        // no fault any more: every later read must succeed, through a new open each time
        let mut later = Vec::new();
        for _ in 0..3 {
            let p = path.clone();
            let r = with_deadline("read after the fault", OP_DEADLINE, move || fs::read(&p))
                .expect("no hang");
            later.push(match r {
                Ok(got) => {
                    assert!(got == data, "{fault:?}: a later read returned other bytes");
                    "ok".to_string()
                }
                Err(e) => errno_label(os_errno(&e)),
            });
        }
        outcomes.push(format!(
            "{fault:?}: first read {}, later reads {later:?}",
            first
                .as_ref()
                .map(|_| "ok".into())
                .unwrap_or_else(|e| errno_label(os_errno(e)))
        ));
    }
    rig.dump_logs("poison");
    rig.assert_healthy("after the broken bodies");
    assert!(
        outcomes.iter().all(|o| !o.contains("E")),
        "reads after a broken GET body must succeed once the fault is gone:\n{}\n--- s3mount \
         stderr (tail) ---\n{}",
        outcomes.join("\n"),
        tail(&rig.mount.stderr(), 40)
    );
}

/// One broken GET body while a file is being staged for a write (an append downloads the
/// object first): a single reset or truncation is retried like any other reset, so the append
/// succeeds; whatever happens, a failed append leaves the object as it was, and the next append
/// succeeds.
#[tokio::test]
async fn a_broken_get_body_while_staging_is_retried() {
    let rig = Rig::new(&[]).await;
    let old = pseudo_random_bytes(600 * KIB, 61);
    rig.bucket.put("stage.bin", &old).await;
    let path = rig.mount.join("stage.bin");
    fs::metadata(&path).expect("stat");
    let mut outcomes = Vec::new();
    let mut committed = old.clone();
    for fault in [Fault::TruncatedBody, Fault::ResetMidBody] {
        rig.proxy
            .fail(Rule::new("GET", "stage.bin", fault).times(1));
        let k = WriteKind::Append(b"appended".to_vec());
        let p = path.clone();
        let res = with_deadline("append with a broken staging GET", OP_DEADLINE, move || {
            k.run(&p)
        })
        .expect("no hang");
        let in_s3 = rig.bucket.get("stage.bin").await;
        match &res {
            Ok(()) => {
                committed.extend_from_slice(b"appended");
                assert!(
                    in_s3 == committed,
                    "{fault:?}: acknowledged append is not in S3"
                );
            }
            Err(e) => {
                assert!(
                    in_s3 == committed,
                    "{fault:?}: failed append ({e}) changed the object"
                );
            }
        }
        outcomes.push(format!(
            "{fault:?}: {:?}",
            res.as_ref().map_err(|e| errno_label(os_errno(e)))
        ));
        // and without a fault it works
        let k = WriteKind::Append(b"+after".to_vec());
        let p = path.clone();
        with_deadline("append after the fault", OP_DEADLINE, move || k.run(&p))
            .expect("no hang")
            .unwrap_or_else(|e| panic!("{fault:?}: append after the fault failed: {e}"));
        committed.extend_from_slice(b"+after");
        assert!(
            rig.bucket.get("stage.bin").await == committed,
            "{fault:?}: append after"
        );
    }
    eprintln!("staging with a broken body: {outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.ends_with("Ok(())")),
        "one broken body while staging must be retried, not fail the write: {outcomes:?}"
    );
    rig.assert_healthy("after the staging faults");
}
