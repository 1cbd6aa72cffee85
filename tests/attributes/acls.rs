//! POSIX ACLs: setfacl/getfacl stored like s3fs, enforced by the kernel.

use super::*;

/// Whether uid 65534 can read `path` (run through setpriv).
fn nobody_can_read(path: &Path) -> bool {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run setpriv")
        .success()
}

#[tokio::test]
async fn acls_are_stored_like_s3fs_and_enforced_by_the_kernel() {
    if !have("setfacl") {
        eprintln!("skipped: setfacl is not installed (apt-get install acl)");
        return;
    }
    let s3 = S3Server::start();
    let bucket = s3.new_bucket().await;
    bucket.put("f.txt", b"secret\n").await;
    bucket.put("d/inner.txt", b"i").await;
    // --allow-other so that uid 65534 reaches the mount at all
    let mut mount = Mount::new(&s3, bucket.name(), &["--allow-other"]);
    let dir = mount.path().to_path_buf();
    let f = mount.join("f.txt");

    sh(&dir, "chmod 640 f.txt && setfacl -m u:nobody:r f.txt");
    let acl = sh(&dir, "getfacl -c f.txt");
    assert!(acl.contains("user:nobody:r--"), "getfacl:\n{acl}");
    assert!(acl.contains("mask::r--"), "getfacl:\n{acl}");
    let header = decode_header(&bucket.metadata("f.txt").await["xattr"]);
    assert_eq!(header.len(), 1, "{header:?}");
    assert_eq!(header[0].0, "system.posix_acl_access");
    assert_eq!(
        header[0].1.len(),
        4 + 5 * 8,
        "the xattr form: header and five entries"
    );

    // the kernel enforces it (needs root to switch users, and a path uid 65534 may walk)
    let root = nix_is_root();
    if root {
        fs::set_permissions(dir.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(nobody_can_read(&f), "u:nobody:r grants reading");
    }

    // chmod rewrites the mask, as on a local filesystem
    sh(&dir, "chmod 600 f.txt");
    let acl = sh(&dir, "getfacl -c f.txt");
    assert!(acl.contains("mask::---"), "after chmod 600:\n{acl}");
    if root {
        assert!(!nobody_can_read(&f), "the mask now denies it");
    }
    sh(&dir, "chmod 640 f.txt && setfacl -d -m u:nobody:rx d");

    mount.remount();
    let dir = mount.path().to_path_buf();
    let acl = sh(&dir, "getfacl -c f.txt");
    assert!(
        acl.contains("user:nobody:r--") && acl.contains("mask::r--"),
        "after a remount:\n{acl}"
    );
    let st = fs::metadata(mount.join("f.txt")).unwrap();
    assert_eq!(st.permissions().mode() & 0o777, 0o640);
    let dacl = sh(&dir, "getfacl -c d");
    assert!(
        dacl.contains("default:user:nobody:r-x"),
        "default ACL on d:\n{dacl}"
    );
    if root {
        assert!(
            nobody_can_read(&mount.join("f.txt")),
            "enforced after a remount"
        );
    }

    // removing the ACL leaves the mode bits
    sh(&dir, "setfacl -b f.txt");
    let acl = sh(&dir, "getfacl -c f.txt");
    assert!(!acl.contains("nobody"), "{acl}");
    assert!(!bucket.metadata("f.txt").await.contains_key("xattr"));
    if root {
        assert!(!nobody_can_read(&mount.join("f.txt")));
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
