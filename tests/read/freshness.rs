//! Changes behind the mount's back: changes made through the SDK are seen after the TTL, and
//! reads racing them never mix versions. An object overwritten behind the mount's back is read
//! as its new version by a handle that has returned nothing yet (within the metadata TTL too), a
//! read that spans a change fails rather than mixing versions, and s3fs's older directory forms
//! (`dir` with `application/x-directory`, `dir_$folder$`) are directories. An empty `dir` object
//! is one only once a lookup has read its headers: a listing cannot tell it from an empty file.

use super::*;

/// Objects overwritten (same size and different size), deleted or created through the SDK are
/// seen through the mount once the metadata TTL has passed.
#[tokio::test]
async fn overwrite_delete_and_create_are_seen_after_the_ttl() {
    let Served { s3, bucket } = Served::new().await;
    bucket.put("same-size.txt", b"AAAA-version-1").await;
    bucket.put("grows.txt", b"short").await;
    bucket.put("doomed.txt", b"about to be deleted").await;
    let mount = Mount::new(&s3, bucket.name(), &["--metadata-ttl", "1"]);

    // Read everything once (the kernel and s3mount now cache it), via a listing too.
    assert_eq!(std::fs::read_dir(mount.path()).unwrap().count(), 3);
    assert_eq!(
        std::fs::read(mount.join("same-size.txt")).unwrap(),
        b"AAAA-version-1"
    );
    assert_eq!(std::fs::read(mount.join("grows.txt")).unwrap(), b"short");
    assert_eq!(
        std::fs::read(mount.join("doomed.txt")).unwrap(),
        b"about to be deleted"
    );

    bucket.put("same-size.txt", b"BBBB-version-2").await;
    let longer = pseudo_random_bytes(3 * BLOCK + 5, 9);
    bucket.put("grows.txt", &longer).await;
    bucket.delete("doomed.txt").await;
    bucket
        .put("newcomer.txt", b"created behind the mount's back")
        .await;
    std::thread::sleep(Duration::from_millis(1500));

    assert_eq!(
        std::fs::read(mount.join("same-size.txt")).unwrap(),
        b"BBBB-version-2",
        "a same-size overwrite must be seen after the TTL (no stale page cache)"
    );
    assert_eq!(
        std::fs::metadata(mount.join("grows.txt")).unwrap().len(),
        longer.len() as u64,
        "st_size after the overwrite"
    );
    assert!(
        std::fs::read(mount.join("grows.txt")).unwrap() == longer,
        "contents after the overwrite"
    );
    let err = std::fs::metadata(mount.join("doomed.txt")).expect_err("stat of a deleted object");
    assert_eq!(errno(&err), libc::ENOENT, "stat of a deleted object: {err}");
    let err = std::fs::read(mount.join("doomed.txt")).expect_err("read of a deleted object");
    assert_eq!(errno(&err), libc::ENOENT, "open of a deleted object: {err}");
    let mut names: Vec<String> = std::fs::read_dir(mount.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["grows.txt", "newcomer.txt", "same-size.txt"],
        "listing after the changes"
    );
    assert_eq!(
        std::fs::read(mount.join("newcomer.txt")).unwrap(),
        b"created behind the mount's back"
    );
}

/// Reads `file` to the end in 128 KiB reads, checking every chunk against `old`; an error ends
/// the read. Returns (bytes read, the error if any). Panics on bytes that are not the old ones.
fn read_rest_checking(
    file: &mut File,
    mut pos: usize,
    old: &[u8],
    new: &[u8],
) -> (usize, Option<io::Error>) {
    let mut buf = vec![0u8; 128 * KIB];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return (pos, None),
            Ok(n) => {
                assert!(pos + n <= old.len(), "read past the old version's end");
                if buf[..n] != old[pos..pos + n] {
                    let is_new = new.len() >= pos + n && buf[..n] == new[pos..pos + n];
                    panic!(
                        "bytes {pos}..{} of one open handle are not the old version's ({}): \
                         versions mixed in one read",
                        pos + n,
                        if is_new {
                            "they are the new version's"
                        } else {
                            "neither version's"
                        }
                    );
                }
                pos += n;
            }
            Err(e) => return (pos, Some(e)),
        }
    }
}

/// A handle opened before an overwrite returns only the old version's bytes, or an error —
/// never the new bytes after old ones. A small cache (`--cache-size 4`) forces fetches after the
/// overwrite. After the TTL a new open reads the new version entirely.
#[tokio::test]
async fn read_racing_an_overwrite_never_mixes_versions() {
    let Served { s3, bucket } = Served::new().await;
    let size = 20 * MIB;
    let old = pseudo_random_bytes(size, 21);
    let new = pseudo_random_bytes(size, 22);
    bucket.put("race.bin", &old).await;
    let mount = Mount::new(
        &s3,
        bucket.name(),
        &["--metadata-ttl", "1", "--cache-size", "4"],
    );

    let mut file = File::open(mount.join("race.bin")).expect("open race.bin");
    let mut head = vec![0u8; MIB];
    file.read_exact(&mut head).expect("read the first MiB");
    assert!(head == old[..MIB], "the first MiB is the old version's");

    bucket.put("race.bin", &new).await; // same size, different bytes
    let (pos, err) = read_rest_checking(&mut file, MIB, &old, &new);
    match &err {
        None => {
            assert_eq!(pos, size, "the handle ended early without an error");
            eprintln!("racing read: completed with the old version's bytes only");
        }
        Some(e) => eprintln!("racing read: failed at offset {pos} with {e} (allowed)"),
    }
    drop(file);

    std::thread::sleep(Duration::from_millis(1500));
    let after = std::fs::read(mount.join("race.bin")).expect("read after the TTL");
    assert_eq!(after.len(), size);
    if let Some(i) = after.iter().zip(&new).position(|(a, b)| a != b) {
        panic!(
            "a fresh open after the TTL must read the new version; first difference at {i} \
             ({})",
            if after[i..i + 16] == old[i..i + 16] {
                "old bytes: stale cache"
            } else {
                "neither version"
            }
        );
    }
}

/// A handle opened before the object is deleted returns only the old bytes or an error.
#[tokio::test]
async fn read_racing_a_delete_returns_old_bytes_or_an_error() {
    let Served { s3, bucket } = Served::new().await;
    let size = 12 * MIB;
    let old = pseudo_random_bytes(size, 31);
    bucket.put("gone.bin", &old).await;
    let mount = Mount::new(
        &s3,
        bucket.name(),
        &["--metadata-ttl", "1", "--cache-size", "4"],
    );

    let mut file = File::open(mount.join("gone.bin")).expect("open gone.bin");
    let mut head = vec![0u8; MIB];
    file.read_exact(&mut head).unwrap();
    assert!(head == old[..MIB]);
    bucket.delete("gone.bin").await;
    let (pos, err) = read_rest_checking(&mut file, MIB, &old, &[]);
    match &err {
        None => assert_eq!(pos, size, "the handle ended early without an error"),
        Some(e) => eprintln!("read after delete: failed at offset {pos} with {e} (allowed)"),
    }
    drop(file);
    std::thread::sleep(Duration::from_millis(1500));
    let err = File::open(mount.join("gone.bin")).expect_err("open after delete + TTL");
    assert_eq!(errno(&err), libc::ENOENT, "{err}");
}

/// `cat path`: its stdout, or its stderr as the error.
fn cat(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let out = Command::new("cat").arg(path).output().expect("run cat");
    match out.status.success() {
        true => Ok(out.stdout),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

async fn overwrite_then_cat(ttl: &str) {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    let mount = Mount::new(&s3, bucket.name(), &["--metadata-ttl", ttl]);
    let path = mount.join("f");
    std::fs::write(&path, b"old\n").expect("echo old > f");
    assert_eq!(bucket.get("f").await, b"old\n");

    let new = b"the new version, longer than the old one\n";
    bucket.put("f", new).await;
    let got = cat(&path).unwrap_or_else(|e| panic!("cat f after the overwrite: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(new),
        "cat within the TTL returns the new version, whole"
    );
    let len = std::fs::metadata(&path).expect("stat f").len();
    assert_eq!(
        len,
        new.len() as u64,
        "stat after the read shows the new size"
    );

    // A version shorter than the one the kernel knows: no stale tail, no zeros.
    let short = mount.join("g");
    std::fs::write(&short, b"a first version, longer than the next one\n").expect("write g");
    bucket.put("g", b"short\n").await;
    assert_eq!(cat(&short).expect("cat g after the overwrite"), b"short\n");
    assert_eq!(std::fs::metadata(&short).unwrap().len(), 6, "stat of g");
}

/// `echo old > f`, an overwrite through the SDK, then `cat f` at once: the new content.
#[tokio::test]
async fn cat_after_an_outside_overwrite_reads_the_new_version() {
    overwrite_then_cat("5").await;
}

/// The same with a long metadata TTL, where nothing expires on its own.
#[tokio::test]
async fn cat_after_an_outside_overwrite_reads_the_new_version_with_a_long_ttl() {
    overwrite_then_cat("60").await;
}

/// A handle that has returned bytes of one version fails (ESTALE) once the object changes,
/// and never returns bytes of the new version after those of the old one. A small cache
/// (`--cache-size 4`) makes the rest of the file be fetched after the overwrite.
#[tokio::test]
async fn a_read_spanning_an_overwrite_fails_instead_of_mixing() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    let size = 20 * MIB;
    let old = pseudo_random_bytes(size, 41);
    let new = pseudo_random_bytes(size, 42);
    bucket.put("big.bin", &old).await;
    let mount = Mount::new(&s3, bucket.name(), &["--cache-size", "4"]);

    let mut file = File::open(mount.join("big.bin")).expect("open big.bin");
    let mut head = vec![0u8; MIB];
    file.read_exact(&mut head).expect("read the first MiB");
    assert!(head == old[..MIB], "the first MiB is the old version's");

    bucket.put("big.bin", &new).await;
    let mut pos = MIB;
    let mut buf = vec![0u8; 128 * 1024];
    let err = loop {
        match file.read(&mut buf) {
            Ok(0) => panic!("read to the end ({pos} bytes) without noticing the overwrite"),
            Ok(n) => {
                assert!(
                    buf[..n] == old[pos..pos + n],
                    "bytes {pos}..{} are not the old version's: versions mixed",
                    pos + n
                );
                pos += n;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(
        err.raw_os_error(),
        Some(libc::ESTALE),
        "error at {pos}: {err}"
    );
    drop(file);

    // A new handle reads the new version whole, within the TTL.
    let again = std::fs::read(mount.join("big.bin")).expect("read after the overwrite");
    assert!(again == new, "a new open reads the new version");
}

/// `ls -l DIR` through a shell: its output.
fn ls_l(dir: &std::path::Path) -> String {
    let out = Command::new("ls")
        .arg("-l")
        .arg(dir)
        .output()
        .expect("run ls");
    assert!(out.status.success(), "ls -l {}: {:?}", dir.display(), out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `ls -l` line of `name`, or a panic showing the listing.
fn line_of<'a>(listing: &'a str, name: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.split_whitespace().last() == Some(name))
        .unwrap_or_else(|| panic!("{name} not in:\n{listing}"))
}

/// `cd DIR && ls`: the names, as a shell that changed into it sees them.
fn cd_and_ls(dir: &std::path::Path) -> Vec<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("cd \"$1\" && ls")
        .arg("sh")
        .arg(dir)
        .output()
        .expect("run sh");
    assert!(out.status.success(), "cd {}: {:?}", dir.display(), out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// s3fs's older directory forms — `dir` with `application/x-directory` (no slash), and
/// `dir_$folder$` — show as directories with their children, also after a remount; `rmdir`
/// of an empty one deletes the object that stands for it.
#[tokio::test]
async fn s3fs_older_directory_forms_are_directories() {
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    let xdir = Some("application/x-directory");
    bucket.put_with("xdir", b"", &[], &[], xdir).await;
    bucket
        .put("xdir/inner.txt", b"inside an x-directory\n")
        .await;
    bucket.put_with("xempty", b"", &[], &[], xdir).await;
    bucket.put("hdir_$folder$", b"").await;
    bucket
        .put("hdir/child.txt", b"inside a folder object\n")
        .await;
    bucket.put("hempty_$folder$", b"").await;
    bucket.put("empty.txt", b"").await;
    let mut mount = Mount::new(&s3, bucket.name(), &[]);

    for round in ["first mount", "after a remount"] {
        // An empty `dir` object is known for a directory once a lookup has read its headers
        // (a listing alone cannot tell it from an empty file).
        let xempty = std::fs::metadata(mount.join("xempty")).expect("stat xempty");
        assert!(xempty.is_dir(), "{round}: xempty by its Content-Type");
        let root = ls_l(mount.path());
        for dir in ["xdir", "xempty", "hdir", "hempty"] {
            assert!(
                line_of(&root, dir).starts_with('d'),
                "{round}: {dir}:\n{root}"
            );
        }
        assert!(
            line_of(&root, "empty.txt").starts_with('-'),
            "{round}:\n{root}"
        );
        assert!(!root.contains("$folder$"), "{round}:\n{root}");
        let inner = ls_l(&mount.join("xdir"));
        assert!(
            line_of(&inner, "inner.txt").starts_with('-'),
            "{round}:\n{inner}"
        );
        assert_eq!(cd_and_ls(&mount.join("xdir")), ["inner.txt"], "{round}");
        assert_eq!(cd_and_ls(&mount.join("hdir")), ["child.txt"], "{round}");
        assert!(cd_and_ls(&mount.join("xempty")).is_empty(), "{round}");
        assert_eq!(
            std::fs::read(mount.join("hdir/child.txt")).unwrap(),
            b"inside a folder object\n"
        );
        mount.remount();
    }
    // Straight to a path after a remount, with no listing of the root first.
    assert_eq!(cd_and_ls(&mount.join("hdir")), ["child.txt"]);
    assert!(std::fs::metadata(mount.join("xempty")).unwrap().is_dir());
    assert!(std::fs::metadata(mount.join("hempty")).unwrap().is_dir());

    std::fs::remove_dir(mount.join("xempty")).expect("rmdir xempty");
    std::fs::remove_dir(mount.join("hempty")).expect("rmdir hempty");
    assert!(
        !bucket.exists("xempty").await,
        "rmdir deletes the x-directory object"
    );
    assert!(
        !bucket.exists("hempty_$folder$").await,
        "rmdir deletes the folder object"
    );
    mount.remount();
    let root = ls_l(mount.path());
    assert!(
        !root.contains("xempty") && !root.contains("hempty"),
        "{root}"
    );
}
