//! The inode table follows the kernel: nodes the kernel forgets (memory pressure,
//! `drop_caches`) leave the table, while what it still holds (an open file) stays; forgotten
//! names come back on demand, with the same contents and attributes.

use super::*;

/// Asks the kernel to drop its unused dentries and inodes, which sends FORGETs for them.
fn drop_kernel_inodes() {
    fs::write("/proc/sys/vm/drop_caches", "2")
        .expect("writing /proc/sys/vm/drop_caches (the tests run as root)");
}

#[tokio::test]
async fn nodes_the_kernel_forgets_leave_the_table_and_come_back_on_demand() {
    const FILES: usize = 300;
    let Served { s3, bucket } = Served::new().await;
    let puts = (0..FILES).map(|i| {
        let bucket = &bucket;
        async move { bucket.put(&format!("d/f{i:03}"), format!("file {i}")).await }
    });
    join_all(puts).await;
    let (mount, port) = mount_with_metrics(|| Mount::builder(&s3, bucket.name()));
    let inodes = || sample(&http_get(port, "/metrics").1, "s3mount_inodes") as usize;

    // `ls -l` (readdirplus) hands the kernel every entry.
    let listed = sh(mount.path(), "ls -l d | grep -c ' f'");
    assert_eq!(listed.trim(), FILES.to_string());
    let held = inodes();
    assert!(held > FILES, "{held} inodes after listing {FILES} files");
    let mtime = fs::metadata(mount.join("d/f123"))
        .unwrap()
        .modified()
        .unwrap();
    // An open file is held by the kernel through the drop.
    let mut open = File::open(mount.join("d/f007")).unwrap();

    drop_kernel_inodes();
    let shrunk = wait_until(Duration::from_secs(10), || inodes() < 10);
    let left = inodes();
    eprintln!("figures: inodes after ls -l of {FILES}: {held}; after drop_caches: {left}");
    assert!(
        shrunk,
        "the table still holds {left} inodes after drop_caches"
    );

    let mut text = String::new();
    open.read_to_string(&mut text).unwrap();
    assert_eq!(text, "file 7", "the open file reads on");
    assert_eq!(fs::read(mount.join("d/f123")).unwrap(), b"file 123");
    let again = fs::metadata(mount.join("d/f123"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(again, mtime, "a node looked up again shows the same mtime");
    let listed = sh(mount.path(), "ls -l d | grep -c ' f'");
    assert_eq!(
        listed.trim(),
        FILES.to_string(),
        "the listing is whole again"
    );
}
