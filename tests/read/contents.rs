//! Contents equal byte for byte around the block (256 KiB) and part (8 MiB) sizes and for
//! ~20 MiB; random-offset reads.

use super::*;

/// Whole-file reads (std::fs, `cat`, `md5sum`) equal the objects byte for byte at the block
/// (256 KiB) and part (8 MiB) boundaries, and for ~20 MiB.
#[tokio::test]
async fn contents_equal_byte_for_byte_at_block_and_part_boundaries() {
    let Served { s3, bucket } = Served::new().await;
    let sizes = [
        0,
        1,
        BLOCK - 1,
        BLOCK,
        BLOCK + 1,
        PART - 1,
        PART,
        PART + 1,
        20 * MIB + 12_345,
    ];
    let objects: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            (
                format!("sizes/obj-{n}"),
                pseudo_random_bytes(n, 100 + i as u64),
            )
        })
        .collect();
    join_all(objects.iter().map(|(k, v)| bucket.put(k, v))).await;

    let mount = Mount::new(&s3, bucket.name(), &[]);
    let local = tempfile::tempdir().unwrap();
    for (key, bytes) in &objects {
        let path = mount.join(key);
        assert_eq!(
            std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("stat {key}: {e}"))
                .len(),
            bytes.len() as u64,
            "st_size of {key}"
        );
        let read = std::fs::read(&path).unwrap_or_else(|e| panic!("read {key}: {e}"));
        assert_eq!(read.len(), bytes.len(), "length read from {key}");
        if let Some(i) = read.iter().zip(bytes).position(|(a, b)| a != b) {
            panic!("{key}: first differing byte at offset {i}");
        }

        let cat = tool("cat", &[path.as_os_str()]);
        assert!(cat.status.success(), "cat {key}");
        assert!(cat.stdout == *bytes, "cat {key} differs from the object");

        let copy = local.path().join("copy");
        std::fs::write(&copy, bytes).unwrap();
        let want_md5 = md5sum(&copy);
        assert_eq!(md5sum(&path), want_md5, "md5sum of {key}");
        // A single PutObject's ETag is the MD5 of the body.
        let etag = bucket.head(key).await.unwrap().e_tag().unwrap().to_string();
        assert_eq!(etag.trim_matches('"'), want_md5, "ETag of {key}");
    }
}

/// `n` reads at offsets drawn from a PRNG seeded with `seed` (seek + read_exact on one handle,
/// pread on another), plus reads straddling a block boundary, the part boundary and the end:
/// every one must equal the object's bytes.
fn check_random_reads(path: &Path, data: &[u8], seed: u64, n: usize) {
    let size = data.len() as u64;
    let mut file = File::open(path).expect("open");
    let mut rng = Rng(seed);
    let mut buf = vec![0u8; 300 * KIB];
    let mut reads: Vec<(u64, usize)> = (0..n)
        .map(|_| {
            let off = rng.range(0, size - 1);
            let len = rng.range(1, 300 * KIB as u64).min(size - off) as usize;
            (off, len)
        })
        .collect();
    reads.push((BLOCK as u64 - 10, 20));
    reads.push((PART as u64 - 100, 200));
    reads.push((size - 17, 17));
    reads.push((0, 1));
    for &(off, len) in &reads {
        file.seek(SeekFrom::Start(off)).unwrap();
        file.read_exact(&mut buf[..len])
            .unwrap_or_else(|e| panic!("read_exact({off}, {len}): {e}"));
        assert!(
            buf[..len] == data[off as usize..off as usize + len],
            "bytes at offset {off}, length {len} differ from the object"
        );
    }
    file.seek(SeekFrom::Start(size)).unwrap();
    assert_eq!(file.read(&mut buf).unwrap(), 0, "read at EOF");

    let second = File::open(path).unwrap();
    for _ in 0..n / 3 {
        let off = rng.range(0, size - 1);
        let len = rng.range(1, 64 * KIB as u64).min(size - off) as usize;
        second
            .read_exact_at(&mut buf[..len], off)
            .unwrap_or_else(|e| panic!("pread({off}, {len}): {e}"));
        assert!(
            buf[..len] == data[off as usize..off as usize + len],
            "pread at offset {off}, length {len} differs from the object"
        );
    }
}

/// Random-offset reads equal the object's bytes: with the default cache, and with a 1 MiB
/// cache (`--cache-size 1`) where blocks are evicted all the time, so reads keep fetching
/// ranges and re-fetching evicted blocks.
#[tokio::test]
async fn random_offset_reads_equal_the_object() {
    let Served { s3, bucket } = Served::new().await;
    let data = pseudo_random_bytes(PART + 4 * MIB + 333, 7);
    bucket.put("random.bin", &data).await;

    for (args, n, seed) in [
        (&[][..], 150, 0x5EED_0002),
        (&["--cache-size", "1"][..], 45, 0x5EED_0003),
    ] {
        let mount = Mount::new(&s3, bucket.name(), args);
        let gets_before = s3.log().matches("GET /").count();
        let started = Instant::now();
        check_random_reads(&mount.join("random.bin"), &data, seed, n);
        eprintln!(
            "{args:?}: {} random reads in {:?}, {} GETs",
            n + n / 3 + 4,
            started.elapsed(),
            s3.log().matches("GET /").count() - gets_before
        );
    }
}
