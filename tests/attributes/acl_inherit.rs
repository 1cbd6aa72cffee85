//! Default ACLs inherited on creation, through a real mount against moto: with `FUSE_POSIX_ACL`
//! the kernel leaves the umask and the directory's default ACL to the filesystem, which does
//! what a local filesystem does (POSIX.1e): in a directory with a default ACL a new file,
//! directory or special file takes the ACL (a directory also as its own default) and its mode
//! follows the ACL, not the umask; elsewhere the umask applies and no ACL is stored. Covered:
//! getfacl and the modes after creation and after a remount, the `x-amz-meta-xattr` headers
//! stored, and the kernel granting uid 65534 what the inherited entry says (`--allow-other`).

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

/// Runs `script` in `dir`, asserting success; returns its stdout.
#[track_caller]
fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run sh -c {script}: {e}"));
    assert!(
        out.status.success(),
        "`{script}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `script` succeeds in `dir` when run as uid/gid 65534 (through setpriv).
fn as_nobody(dir: &Path, script: &str) -> bool {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run setpriv")
        .success()
}

fn have_setfacl() -> bool {
    let found = Command::new("sh")
        .args(["-c", "command -v setfacl && command -v getfacl"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipped: setfacl is not installed (apt-get install acl)");
    }
    found
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn perm(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The attribute names in an `x-amz-meta-xattr` value (`urlencode({"name":"b64",...})`),
/// read without s3mount's code.
fn header_names(header: &str) -> Vec<String> {
    let json = header.replace("%7B", "{").replace("%7D", "}");
    let json = json
        .replace("%22", "\"")
        .replace("%3A", ":")
        .replace("%2C", ",");
    json.trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .filter_map(|pair| Some(pair.split(':').next()?.trim_matches('"').to_string()))
        .collect()
}

/// What the tree made by [`new_nodes_inherit_the_default_acl`] must show.
#[track_caller]
fn assert_inherited(dir: &Path, when: &str) {
    let f = sh(dir, "getfacl -c d/f");
    assert!(f.contains("user:nobody:rwx"), "{when}: d/f\n{f}");
    assert!(f.contains("mask::rw-"), "{when}: d/f\n{f}");
    assert!(!f.contains("default:"), "{when}: d/f\n{f}");
    // touch asks 0666; the umask (077) plays no part, the ACL's other entry (r-x) does
    assert_eq!(perm(&dir.join("d/f")), 0o664, "{when}: d/f");

    let sub = sh(dir, "getfacl -c d/sub");
    assert!(sub.contains("\nuser:nobody:rwx"), "{when}: d/sub\n{sub}");
    assert!(
        sub.contains("default:user:nobody:rwx"),
        "{when}: d/sub\n{sub}"
    );
    assert!(sub.contains("default:other::r-x"), "{when}: d/sub\n{sub}");
    assert_eq!(perm(&dir.join("d/sub")), 0o775, "{when}: d/sub");

    let deep = sh(dir, "getfacl -c d/sub/deep");
    assert!(
        deep.contains("user:nobody:rwx"),
        "{when}: passed on\n{deep}"
    );
    assert_eq!(perm(&dir.join("d/sub/deep")), 0o664, "{when}: d/sub/deep");

    let fifo = dir.join("d/p");
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(
        sh(dir, "getfacl -c d/p").contains("user:nobody:rwx"),
        "{when}"
    );
    assert_eq!(perm(&fifo), 0o664, "{when}: d/p");
}

#[tokio::test]
async fn new_nodes_inherit_the_default_acl() {
    if !have_setfacl() {
        return;
    }
    // --allow-other so that uid 65534 reaches the mount at all
    let Env {
        s3: _s3,
        bucket,
        mut mount,
    } = Env::with_args(&["--allow-other"]).await;
    let dir = mount.path().to_path_buf();
    sh(&dir, "umask 022 && mkdir d && setfacl -d -m u:nobody:rwx d");
    sh(
        &dir,
        "umask 077 && echo secret > d/f && mkdir d/sub && mkfifo d/p \
         && touch d/sub/deep && ln -s f d/l",
    );
    assert_inherited(&dir, "after creation");

    // stored the s3fs way: an access ACL on each node, a default one on the directory too
    let names = |m: std::collections::HashMap<String, String>| {
        m.get("xattr").map(|h| header_names(h)).unwrap_or_default()
    };
    assert_eq!(
        names(bucket.metadata("d/f").await),
        ["system.posix_acl_access"]
    );
    assert_eq!(
        names(bucket.metadata("d/sub/").await),
        ["system.posix_acl_access", "system.posix_acl_default"]
    );
    assert!(
        names(bucket.metadata("d/l").await).is_empty(),
        "symlinks have no ACL"
    );

    mount.remount();
    let dir = mount.path().to_path_buf();
    assert_inherited(&dir, "after a remount");

    if is_root() {
        // a path uid 65534 may walk: the mount point's parent is the test's private dir
        fs::set_permissions(dir.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
        // d/f is 0664 root:root: only the inherited entry lets nobody write it
        assert!(
            as_nobody(&dir, "echo more >> d/f"),
            "the entry grants writing"
        );
        assert_eq!(
            fs::read_to_string(dir.join("d/f")).unwrap(),
            "secret\nmore\n"
        );
        // d/sub is 0775 root:root: only the inherited entry lets nobody create in it
        assert!(as_nobody(&dir, "echo x > d/sub/mine"), "and creating");
        assert!(!as_nobody(&dir, "echo x > mine"), "not outside d");
        sh(&dir, "setfacl -x u:nobody d/f");
        assert!(
            !as_nobody(&dir, "echo more >> d/f"),
            "removed, it grants nothing"
        );
    }
}

#[tokio::test]
async fn without_a_default_acl_the_umask_applies_and_no_acl_is_stored() {
    if !have_setfacl() {
        return;
    }
    let Env {
        s3: _s3,
        bucket,
        mount,
    } = Env::new().await;
    let dir = mount.path().to_path_buf();
    sh(&dir, "umask 027 && touch f && mkdir d && mkfifo p");
    assert_eq!(perm(&dir.join("f")), 0o640);
    assert_eq!(perm(&dir.join("d")), 0o750);
    assert_eq!(perm(&dir.join("p")), 0o640);
    for key in ["f", "d/", "p"] {
        assert!(
            !bucket.metadata(key).await.contains_key("xattr"),
            "{key}: no ACL stored"
        );
    }
    assert!(!sh(&dir, "getfacl -c f").contains("mask"));

    // a default ACL removed (setfacl -k) no longer applies
    sh(&dir, "setfacl -d -m u:nobody:rwx d && setfacl -k d");
    sh(&dir, "umask 077 && touch d/g");
    assert_eq!(perm(&dir.join("d/g")), 0o600);
    assert!(!bucket.metadata("d/g").await.contains_key("xattr"));
}
