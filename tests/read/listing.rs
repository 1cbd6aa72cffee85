//! Listings equal the bucket's keys: 2,500 entries, implicit directories, markers, the `a` /
//! `a/…` conflict where the directory wins, odd names, unrepresentable keys skipped; unlisted
//! small files cost one GET each.

use super::*;

/// A directory of 2,500 objects (three LIST pages) lists exactly the bucket's keys. With
/// `--listing-attributes`, `ls -l` shows each object's size without a request per entry; by
/// default each entry is completed once (its s3fs headers), and a listing after the TTL
/// revalidates unchanged objects without asking about them again.
#[tokio::test]
async fn listing_of_2500_entries_equals_the_bucket_keys() {
    let Served { s3, bucket } = Served::new().await;
    let objects: Vec<(String, Vec<u8>)> = (0..2500)
        .map(|i| {
            (
                format!("big/entry-{i:05}.dat"),
                pseudo_random_bytes(i % 700, i as u64),
            )
        })
        .collect();
    let started = Instant::now();
    seed(&bucket, &objects).await;
    bucket.put("outside.txt", b"not in big/").await;
    eprintln!("seeded 2,500 objects in {:?}", started.elapsed());
    let keys = bucket.list_keys("big/").await;
    assert_eq!(keys.len(), 2500, "the bucket should hold 2,500 keys");

    let mut mount = Mount::new(&s3, bucket.name(), &["--listing-attributes"]);
    let big = mount.join("big");

    let mut names: Vec<String> = std::fs::read_dir(&big)
        .expect("read_dir big")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want: Vec<String> = keys
        .iter()
        .map(|k| k.strip_prefix("big/").unwrap().to_string())
        .collect();
    assert_eq!(names.len(), want.len(), "number of entries in big/");
    assert_eq!(names, want, "big/ should list exactly the bucket's keys");

    let log_before = s3.log().lines().count();
    let listed = ls_l(&big);
    let log_after: Vec<String> = s3
        .log()
        .lines()
        .skip(log_before)
        .map(String::from)
        .collect();
    assert_eq!(
        listed.len(),
        2500 + 2,
        "ls -la big: 2,500 entries plus . and .."
    );
    for (key, bytes) in &objects {
        let name = key.strip_prefix("big/").unwrap();
        let (kind, size) = listed
            .get(name)
            .unwrap_or_else(|| panic!("ls -l does not show {name}"));
        assert_eq!(*kind, '-', "{name} should be a regular file");
        assert_eq!(*size, bytes.len() as u64, "ls -l size of {name}");
    }
    let heads = log_after
        .iter()
        .filter(|l| l.contains("HEAD /") && l.contains("/big/entry-"))
        .count();
    let lists = log_after
        .iter()
        .filter(|l| l.contains("list-type=2"))
        .count();
    eprintln!("ls -l of 2,500 entries: {lists} LIST and {heads} HEAD requests");
    assert_eq!(
        heads, 0,
        "with --listing-attributes, ls -l after a listing must not HEAD each entry"
    );

    // By default: one request per entry at most, then none while the objects are unchanged.
    mount.remount_with(&["--metadata-ttl", "2"]);
    let per_entry = |from: usize| {
        s3.log()
            .lines()
            .skip(from)
            .filter(|l| (l.contains("HEAD /") || l.contains("GET /")) && l.contains("/big/entry-"))
            .count()
    };
    let before = s3.log().lines().count();
    let first = ls_l(&big);
    let asked = per_entry(before);
    assert_eq!(first.len(), 2502);
    assert!(
        (1..=2500).contains(&asked),
        "a first ls -l completes each entry at most once: {asked} requests"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let before = s3.log().lines().count();
    assert_eq!(ls_l(&big), first, "the same listing after the TTL");
    assert_eq!(
        per_entry(before),
        0,
        "a second ls -l after the TTL revalidates by the listing alone"
    );
}

/// `cat` of small files named on the command line of a fresh mount (no `ls` first) costs one
/// GET per file: the directory is listed once, and each listed file is completed by a GET of
/// the whole object whose bytes the read then takes from the cache.
#[tokio::test]
async fn cat_of_unlisted_small_files_costs_one_get_each() {
    let Served { s3, bucket } = Served::new().await;
    let objects: Vec<(String, Vec<u8>)> = (0..30)
        .map(|i| {
            (
                format!("small/f{i:02}"),
                pseudo_random_bytes(4 * KIB, i as u64),
            )
        })
        .collect();
    seed(&bucket, &objects).await;
    let mount = Mount::new(&s3, bucket.name(), &[]);
    let log_before = s3.log().lines().count();
    let paths: Vec<std::ffi::OsString> = objects
        .iter()
        .map(|(k, _)| mount.join(k).into_os_string())
        .collect();
    let args: Vec<&std::ffi::OsStr> = paths.iter().map(|p| p.as_os_str()).collect();
    let out = tool("cat", &args);
    let want: Vec<u8> = objects.iter().flat_map(|(_, v)| v.clone()).collect();
    assert!(out.stdout == want, "cat must print the 30 objects in order");
    let log: Vec<String> = s3
        .log()
        .lines()
        .skip(log_before)
        .map(String::from)
        .collect();
    let count = |method: &str| {
        log.iter()
            .filter(|l| l.contains(&format!("{method} /")) && l.contains("/small/f"))
            .count()
    };
    let lists = log.iter().filter(|l| l.contains("list-type=2")).count();
    eprintln!(
        "cat of 30 unlisted files: {} GET, {} HEAD, {lists} LIST",
        count("GET"),
        count("HEAD")
    );
    // The first name is resolved alone (a GET of its first block, which its read then uses),
    // the second lists the directory.
    assert_eq!(count("GET"), 30, "one GET per file");
    assert_eq!(count("HEAD"), 0, "no HEAD: a GET tells all a HEAD would");
    assert!(lists <= 4, "the directory is listed once, not per file");
}

/// Implicit directories, markers, the `a` / `a/…` conflict, odd names and unrepresentable keys:
/// the mount shows exactly what the documented rules derive from the bucket's keys.
#[tokio::test]
async fn listing_handles_implicit_dirs_markers_conflicts_and_odd_names() {
    let Served { s3, bucket } = Served::new().await;
    let y255 = "y".repeat(255);
    let z256 = "z".repeat(256);
    let q256 = "q".repeat(256);
    let keys: Vec<String> = vec![
        "implicit/child.txt".into(),
        "implicit/sub/deep.txt".into(),
        "marker/".into(),
        "marker2/".into(),
        "marker2/inside.txt".into(),
        "a".into(),
        "a/b.txt".into(),
        "with space.txt".into(),
        "dir with space/x y.txt".into(),
        "ünïcødé-日本語.txt".into(),
        "100%.txt".into(),
        "%41%2F.txt".into(),
        "a+b.txt".into(),
        "c + d.txt".into(),
        "x//y".into(),
        "./z".into(),
        "../w".into(),
        "dup/./z".into(),
        "dup/fine.txt".into(),
        y255.clone(),
        z256.clone(),
        format!("long/{q256}"),
        "long/ok.txt".into(),
    ];
    let objects: Vec<(String, Vec<u8>)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let body = if k.ends_with('/') {
                Vec::new()
            } else {
                format!("object {k}\n").repeat(i + 1).into_bytes()
            };
            (k.clone(), body)
        })
        .collect();
    seed(&bucket, &objects).await;
    assert_eq!(
        bucket.list_keys("").await.len(),
        keys.len(),
        "every key should be in the bucket"
    );

    let mount = Mount::new(&s3, bucket.name(), &[]);

    // Hand-written expectations for the root (independent of the model below).
    let root = ls_l(mount.path());
    let mut want_root: BTreeMap<String, char> = [
        (".", 'd'),
        ("..", 'd'),
        ("a", 'd'),
        ("implicit", 'd'),
        ("marker", 'd'),
        ("marker2", 'd'),
        ("with space.txt", '-'),
        ("dir with space", 'd'),
        ("ünïcødé-日本語.txt", '-'),
        ("100%.txt", '-'),
        ("%41%2F.txt", '-'),
        ("a+b.txt", '-'),
        ("c + d.txt", '-'),
        ("x", 'd'),
        ("dup", 'd'),
        ("long", 'd'),
    ]
    .into_iter()
    .map(|(n, k)| (n.to_string(), k))
    .collect();
    // Components over 255 bytes are listed (FUSE passes names of up to 1,024 bytes).
    want_root.insert(y255.clone(), '-');
    want_root.insert(z256.clone(), '-');
    let got_root: BTreeMap<String, char> = root.iter().map(|(n, (k, _))| (n.clone(), *k)).collect();
    assert_eq!(
        got_root, want_root,
        "ls -la of the root (`a` must be a directory, `.`/`..` skipped, 256-byte names listed)"
    );
    // ls -l sizes equal the objects' sizes, everywhere.
    let sizes: HashMap<&str, usize> = objects.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    for (dir, prefix) in [
        (mount.path().to_path_buf(), ""),
        (mount.join("implicit"), "implicit/"),
        (mount.join("marker2"), "marker2/"),
        (mount.join("a"), "a/"),
        (mount.join("dir with space"), "dir with space/"),
        (mount.join("long"), "long/"),
        (mount.join("dup"), "dup/"),
    ] {
        for (name, (kind, size)) in ls_l(&dir) {
            if kind != '-' {
                continue;
            }
            let key = format!("{prefix}{name}");
            let want = sizes
                .get(key.as_str())
                .unwrap_or_else(|| panic!("ls -l shows {key:?}, which is not a key"));
            assert_eq!(size, *want as u64, "ls -l size of {key:?}");
        }
    }

    // The file `a` is hidden by the directory `a/`.
    assert!(mount.join("a").is_dir(), "`a` should be a directory");
    let err = std::fs::read(mount.join("a")).expect_err("reading the directory `a`");
    assert_eq!(errno(&err), libc::EISDIR, "read of `a`: {err}");
    assert_eq!(
        std::fs::read(mount.join("a/b.txt")).unwrap(),
        bucket.get("a/b.txt").await
    );
    // Markers: an empty one is an empty directory; a directory's own marker is not an entry.
    assert_eq!(std::fs::read_dir(mount.join("marker")).unwrap().count(), 0);
    // `x//y`: the directory `x` exists, its only child has an empty name and is skipped.
    assert!(mount.join("x").is_dir());
    assert_eq!(
        ls_l(&mount.join("x")).keys().cloned().collect::<Vec<_>>(),
        [".", ".."],
        "x/ holds only the unreachable `x//y`"
    );
    assert_eq!(
        ls_l(&mount.join("long"))
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        [".", "..", "ok.txt", q256.as_str()],
        "long/ lists the 256-byte name"
    );
    assert_eq!(
        ls_l(&mount.join("dup")).keys().cloned().collect::<Vec<_>>(),
        [".", "..", "fine.txt"],
        "dup/ skips `dup/./z`"
    );

    // The whole tree, contents included, equals what the rules derive from the bucket's keys.
    let listed_keys = bucket.list_keys("").await;
    let mut from_bucket = Vec::new();
    for k in &listed_keys {
        from_bucket.push((k.clone(), bucket.get(k).await));
    }
    let (want_dirs, want_files) = expected_tree(&from_bucket);
    let (dirs, files) = walk(mount.path());
    assert_eq!(dirs, want_dirs, "directories of the mount");
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        want_files.keys().collect::<Vec<_>>(),
        "files of the mount"
    );
    for (path, bytes) in &want_files {
        assert!(files[path] == *bytes, "contents of {path:?}");
    }
    let log = mount.stderr();
    assert!(
        log.contains("dup/./") && log.contains("x//"),
        "each skipped key should get a log line naming it; stderr:\n{log}"
    );
}
