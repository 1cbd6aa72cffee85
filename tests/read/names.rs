//! Hostile names and sizes: every special character, control characters, 1,024-byte keys,
//! components over 255 bytes, 50-level trees, empty objects.

use super::*;

/// Every printable ASCII character S3 allows in a key except `/`, and a few others.
const SPECIALS: &[char] = &[
    ' ', '%', '+', '#', '?', '&', '=', ';', ':', '@', '!', '$', '\'', '(', ')', '*', ',', '~', '[',
    ']', '{', '}', '^', '`', '|', '\\', '<', '>', '"', '-', '_', '.',
];

/// Names (one path component each) that S3 allows and Linux can name.
fn hostile_names() -> Vec<String> {
    let mut names: Vec<String> = SPECIALS.iter().map(|c| format!("c{c}x")).collect();
    names.push(SPECIALS.iter().collect::<String>().replace('.', "dot"));
    names.extend(
        [
            "sp ace",
            " leading space",
            "trailing space ",
            "ünïcødé-日本語-🎉",
            "e\u{301}-combining",
            "rtl-\u{05d0}\u{05d1}",
            "%41%2F%25-percent-encoded-looking",
            "a+b c%20d",
            "?q=1&r=2#frag",
            "...",
            "..x",
            "-dash",
            "~tilde",
            "semi;colon:at@",
            "tab\tinside",
            "del\u{7f}inside",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    names
}

/// Names S3 allows that XML 1.0 cannot carry raw in a listing (control characters), or that
/// XML parsers change (`\r` becomes `\n`).
fn control_names() -> Vec<String> {
    ["cr\rinside", "bell\u{7}inside", "esc\u{1b}inside"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn names_in(dir: &Path) -> io::Result<BTreeSet<String>> {
    fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// Keys with every special character (seeded through the SDK) list, stat and read back through
/// the mount; files of those names created through the mount appear in S3 under exactly that
/// key; they rename and unlink. Keys with control characters must not break the listing of
/// their directory for the other names (and read back if listed).
#[tokio::test]
async fn hostile_names_round_trip() {
    let Served { s3, bucket } = Served::new().await;
    let names = hostile_names();
    for (i, n) in names.iter().enumerate() {
        bucket
            .put(&format!("seeded/{n}"), format!("content {i} of {n:?}"))
            .await;
    }
    bucket
        .put(&format!("seeded/dir {}/inner", "&+%"), b"inner")
        .await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let mut problems = Vec::new();

    // seeded through the SDK, read through the mount
    let listed = names_in(&mount.join("seeded")).expect("listing of seeded/");
    let mut want: BTreeSet<String> = names.iter().cloned().collect();
    want.insert("dir &+%".into());
    if listed != want {
        problems.push(format!(
            "listing of seeded/: missing {:?}, unexpected {:?}",
            want.difference(&listed).collect::<Vec<_>>(),
            listed.difference(&want).collect::<Vec<_>>()
        ));
    }
    for (i, n) in names.iter().enumerate() {
        let want = format!("content {i} of {n:?}");
        match fs::read(mount.join("seeded").join(n)) {
            Ok(b) if b == want.as_bytes() => {}
            Ok(b) => problems.push(format!("seeded/{n:?}: read {} other bytes", b.len())),
            Err(e) => problems.push(format!("seeded/{n:?}: read failed: {e}")),
        }
        match fs::metadata(mount.join("seeded").join(n)) {
            Ok(m) if m.len() == want.len() as u64 => {}
            Ok(m) => problems.push(format!("seeded/{n:?}: size {}", m.len())),
            Err(e) => problems.push(format!("seeded/{n:?}: stat failed: {e}")),
        }
    }
    match fs::read(mount.join("seeded/dir &+%/inner")) {
        Ok(b) if b == b"inner" => {}
        other => problems.push(format!("seeded/dir &+%/inner: {other:?}")),
    }

    // created through the mount, checked through the SDK
    fs::create_dir(mount.join("made")).expect("mkdir made");
    for (i, n) in names.iter().enumerate() {
        let body = format!("made {i}");
        if let Err(e) = fs::write(mount.join("made").join(n), &body) {
            problems.push(format!("create made/{n:?}: {e}"));
        }
    }
    let keys: BTreeSet<String> = bucket.list_keys("made/").await.into_iter().collect();
    let mut want_keys: BTreeSet<String> = names.iter().map(|n| format!("made/{n}")).collect();
    want_keys.insert("made/".into());
    if keys != want_keys {
        problems.push(format!(
            "keys under made/: missing {:?}, unexpected {:?}",
            want_keys.difference(&keys).collect::<Vec<_>>(),
            keys.difference(&want_keys).collect::<Vec<_>>()
        ));
    }
    for (i, n) in names.iter().enumerate() {
        if bucket.try_get(&format!("made/{n}")).await.as_deref()
            != Some(format!("made {i}").as_bytes())
        {
            problems.push(format!("made/{n:?}: S3 content differs"));
        }
    }
    // rename each to another hostile name, then unlink
    for n in &names {
        let from = mount.join("made").join(n);
        let to = mount.join("made").join(format!("{n} (renamed)"));
        if let Err(e) = fs::rename(&from, &to) {
            problems.push(format!("rename made/{n:?}: {e}"));
            continue;
        }
        if !bucket.exists(&format!("made/{n} (renamed)")).await
            || bucket.exists(&format!("made/{n}")).await
        {
            problems.push(format!("rename made/{n:?}: keys not moved"));
        }
        if let Err(e) = fs::remove_file(&to) {
            problems.push(format!("unlink made/{n:?} (renamed): {e}"));
        }
    }
    let left = bucket.list_keys("made/").await;
    if left != ["made/"] {
        problems.push(format!("after unlinking, keys under made/: {left:?}"));
    }

    assert_no_panic(&mount, "after hostile names");
    assert!(
        problems.is_empty(),
        "{} problem(s) with hostile names:\n{}\n--- s3mount stderr (tail) ---\n{}",
        problems.len(),
        problems.join("\n"),
        tail(&mount.stderr(), 30)
    );
}

/// Keys with control characters are legal in S3, but XML 1.0 cannot carry them raw in a
/// listing (`encoding-type=url` exists for that). They must not make their directory
/// unlistable for the other entries, nor make the mount fail when one is the bucket's first key.
#[tokio::test]
async fn keys_with_control_characters_do_not_break_listings() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("aaa-first.txt", b"first").await;
    bucket.put("ctl/plain.txt", b"plain").await;
    for (i, n) in control_names().iter().enumerate() {
        bucket.put(&format!("ctl/{n}"), format!("ctl {i}")).await;
    }
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let mut problems = Vec::new();
    // control characters: the other entries of the directory must still list and read
    match names_in(&mount.join("ctl")) {
        Ok(listed) => {
            if !listed.contains("plain.txt") {
                problems.push(format!("ctl/: plain.txt not listed among {listed:?}"));
            }
            for (i, n) in control_names().iter().enumerate() {
                if listed.contains(n) {
                    match fs::read(mount.join("ctl").join(n)) {
                        Ok(b) if b == format!("ctl {i}").as_bytes() => {}
                        other => problems.push(format!("ctl/{n:?} is listed but reads {other:?}")),
                    }
                }
            }
            for n in &listed {
                if n != "plain.txt" && !control_names().contains(n) {
                    problems.push(format!("ctl/: listed a name that is no key: {n:?}"));
                }
            }
        }
        Err(e) => problems.push(format!(
            "listing a directory holding keys with control characters fails: {e} (the other \
             entries are unreachable)"
        )),
    }
    match fs::read(mount.join("ctl/plain.txt")) {
        Ok(b) if b == b"plain" => {}
        other => problems.push(format!("ctl/plain.txt: {other:?}")),
    }
    assert_no_panic(&mount, "after control characters");
    drop(mount);

    // the bucket's first key holds a control character: the mount-time check lists one key
    let bucket2 = s3.new_bucket().await;
    bucket2.put("\u{7}bell-first", b"bell").await;
    bucket2.put("plain.txt", b"plain").await;
    match Mount::builder(&s3, bucket2.name()).try_mount() {
        Ok(m) => {
            if fs::read(m.join("plain.txt")).ok().as_deref() != Some(&b"plain"[..]) {
                problems.push(
                    "bucket whose first key has a control character: plain.txt unreadable".into(),
                );
            }
        }
        Err(f) => {
            problems.push(format!(
            "a bucket whose first key holds a control character cannot be mounted (exit {}): {}",
            f.code,
            f.stderr.lines().filter(|l| l.contains("error")).collect::<Vec<_>>().join(" | ")
        ))
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with control characters in keys:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Key length and depth limits: a 1,024-byte key (S3's maximum) seeded through the SDK lists
/// and reads; one created through the mount works, one byte more is ENAMETOOLONG. A component
/// over 255 bytes is ENAMETOOLONG on create and skipped in listings (file or directory).
/// 50-level trees work both ways and `rm -r` removes them. Zero-byte objects read as empty
/// files, and empty files created through the mount are zero-byte objects.
#[tokio::test]
async fn long_keys_deep_trees_and_empty_objects() {
    let Served { s3, bucket } = Served::new().await;

    // a 1,024-byte key: four 250-byte directories and a file name to fill it up
    let dirs: Vec<String> = (0..4).map(|i| format!("{i}").repeat(250)).collect();
    let prefix = format!("long1024/{}/", dirs.join("/"));
    let file = "f".repeat(1024 - prefix.len());
    let key1024 = format!("{prefix}{file}");
    assert_eq!(key1024.len(), 1024);
    bucket.put(&key1024, b"at the limit").await;

    // components over 255 bytes, as a file and as a directory
    bucket.put("toolong/ok.txt", b"ok").await;
    bucket
        .put(&format!("toolong/{}", "x".repeat(256)), b"x")
        .await;
    bucket
        .put(&format!("toolong/{}/inner.txt", "y".repeat(300)), b"y")
        .await;

    // a 50-level tree seeded through the SDK
    let deep: Vec<String> = (0..50).map(|i| format!("d{i:02}")).collect();
    let deep_key = format!("seeded-deep/{}/leaf.txt", deep.join("/"));
    bucket.put(&deep_key, b"deep leaf").await;

    bucket.put("zero/empty.bin", b"").await;
    let mount = Mount::new(&s3, bucket.name(), &[]);

    // 1,024 bytes: listed at every level and read
    let mut p = mount.join("long1024");
    for d in &dirs {
        assert_eq!(
            names_in(&p).unwrap(),
            BTreeSet::from([d.clone()]),
            "listing {}",
            p.display()
        );
        p = p.join(d);
    }
    assert_eq!(names_in(&p).unwrap(), BTreeSet::from([file.clone()]));
    assert_eq!(fs::read(p.join(&file)).unwrap(), b"at the limit");

    // over 255 bytes: listed (FUSE passes names of up to 1,024 bytes), made, and read back;
    // a component over 1,024 bytes is ENAMETOOLONG
    let (x256, y300) = ("x".repeat(256), "y".repeat(300));
    assert_eq!(
        names_in(&mount.join("toolong")).unwrap(),
        BTreeSet::from(["ok.txt".to_string(), x256.clone(), y300.clone()]),
        "components over 255 bytes are listed"
    );
    assert_eq!(fs::read(mount.join("toolong").join(&x256)).unwrap(), b"x");
    assert_eq!(
        fs::read(mount.join("toolong").join(&y300).join("inner.txt")).unwrap(),
        b"y"
    );
    fs::write(mount.join("toolong").join("z".repeat(256)), b"256").expect("256 bytes");
    assert_eq!(
        bucket.get(&format!("toolong/{}", "z".repeat(256))).await,
        b"256"
    );
    fs::create_dir(mount.join("toolong").join("w".repeat(500))).expect("a 500-byte directory");
    let err = fs::write(mount.join("toolong").join("z".repeat(1025)), b"z").expect_err("1,025");
    assert_eq!(os_errno(&err), libc::ENAMETOOLONG, "{err}");

    // 50 levels, seeded
    let leaf = mount.join(format!("seeded-deep/{}/leaf.txt", deep.join("/")));
    assert_eq!(fs::read(&leaf).unwrap(), b"deep leaf");
    // 50 levels, made through the mount, then removed with rm -r
    let made_deep = mount.join(format!("made-deep/{}", deep.join("/")));
    fs::create_dir_all(&made_deep).expect("mkdir -p of 50 levels");
    fs::write(made_deep.join("leaf.txt"), b"made deep").unwrap();
    let made_key = format!("made-deep/{}/leaf.txt", deep.join("/"));
    assert_eq!(bucket.get(&made_key).await, b"made deep");
    assert_eq!(
        bucket.list_keys("made-deep/").await.len(),
        52,
        "50 directory markers below made-deep/, its own, and the leaf"
    );
    let (ok, err) = run_quiet("rm", &["-r".as_ref(), mount.join("made-deep").as_os_str()]);
    assert!(ok, "rm -r of a 50-level tree: {err}");
    assert_eq!(bucket.list_keys("made-deep/").await, Vec::<String>::new());

    // zero-byte objects
    let m = fs::metadata(mount.join("zero/empty.bin")).unwrap();
    assert_eq!(m.len(), 0);
    assert!(m.is_file());
    assert_eq!(fs::read(mount.join("zero/empty.bin")).unwrap(), b"");
    File::create(mount.join("zero/created-empty")).unwrap();
    assert_eq!(bucket.get("zero/created-empty").await, b"");
    OpenOptions::new()
        .append(true)
        .open(mount.join("zero/empty.bin"))
        .unwrap()
        .write_all(b"now not empty")
        .unwrap();
    assert_eq!(bucket.get("zero/empty.bin").await, b"now not empty");
    fs::write(mount.join("zero/created-empty"), b"").unwrap();
    assert_eq!(bucket.get("zero/created-empty").await, b"");
    // through the mount: a key of exactly 1,024 bytes works, one byte more does not
    let made = mount.join(format!("long1024/{}", dirs.join("/")));
    let name_ok = "g".repeat(file.len());
    fs::write(made.join(&name_ok), b"made at the limit").expect("create a 1,024-byte key");
    assert_eq!(
        bucket.get(&format!("{prefix}{name_ok}")).await,
        b"made at the limit"
    );
    let err = fs::write(made.join(format!("{name_ok}g")), b"x").expect_err("1,025 bytes");
    assert_eq!(
        os_errno(&err),
        libc::ENAMETOOLONG,
        "a 1,025-byte key: {err}"
    );
    assert_no_panic(&mount, "after long keys and deep trees");
}
