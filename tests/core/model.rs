//! Property test: random sequences of file-system operations run on the core (over
//! `MemStore`) and on a reference model; every result (data, sizes, listings, errnos) and the
//! store's final keys must agree. proptest shrinks a diverging sequence to a minimal one, so a
//! failure reads as a short recipe. `PROPTEST_CASES=N` runs more cases.
//!
//! The namespace is deliberately tiny (files `a`, `b`, `d/a`, `d/b` and directory `d`) so that
//! operations collide often: writes over existing files, renames onto them, rmdir of a
//! non-empty directory, operations under a directory that is not there.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use s3mount::fs::inode::ROOT_INO;
use s3mount::fs::AttrChange;
use s3mount::fs::S3Fs;
use s3mount::storage::mem::MemStore;
use s3mount::storage::ObjectStore;

use super::{fs_over, read_all};

const FILES: [&str; 4] = ["a", "b", "d/a", "d/b"];
const DIR: &str = "d";

#[derive(Clone, Debug)]
enum Op {
    /// Open (creating it if missing; truncating with `trunc`), write `data` at `offset`,
    /// flush, release. `data` is never empty: the kernel does not pass a zero-length write
    /// on to the filesystem.
    Write {
        path: &'static str,
        offset: u64,
        data: Vec<u8>,
        trunc: bool,
    },
    /// Read the whole file and its size.
    Read {
        path: &'static str,
    },
    /// Truncate (or extend) to `size` by path.
    Truncate {
        path: &'static str,
        size: u64,
    },
    Unlink {
        path: &'static str,
    },
    Rename {
        from: &'static str,
        to: &'static str,
    },
    Mkdir,
    Rmdir,
    /// List the root (`false`) or `d` (`true`).
    List {
        sub: bool,
    },
}

fn path() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&FILES[..])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (path(), 0..64u64, prop::collection::vec(any::<u8>(), 1..32), any::<bool>())
            .prop_map(|(path, offset, data, trunc)| Op::Write { path, offset, data, trunc }),
        3 => path().prop_map(|path| Op::Read { path }),
        1 => (path(), 0..80u64).prop_map(|(path, size)| Op::Truncate { path, size }),
        1 => path().prop_map(|path| Op::Unlink { path }),
        2 => (path(), path())
            .prop_filter("a rename onto itself", |(f, t)| f != t)
            .prop_map(|(from, to)| Op::Rename { from, to }),
        2 => Just(Op::Mkdir),
        1 => Just(Op::Rmdir),
        1 => any::<bool>().prop_map(|sub| Op::List { sub }),
    ]
}

/// What an operation answered: `Ok` with what it read or listed, or the errno.
type Outcome = Result<String, i32>;

/// The reference: files by path, and whether `d` exists.
#[derive(Default, Debug)]
struct Model {
    files: BTreeMap<String, Vec<u8>>,
    dir: bool,
}

impl Model {
    fn parent_exists(&self, path: &str) -> bool {
        !path.starts_with("d/") || self.dir
    }

    fn apply(&mut self, op: &Op) -> Outcome {
        match op {
            Op::Write {
                path,
                offset,
                data,
                trunc,
            } => {
                if !self.parent_exists(path) {
                    return Err(libc::ENOENT);
                }
                let f = self.files.entry(path.to_string()).or_default();
                if *trunc {
                    f.clear();
                }
                let end = *offset as usize + data.len();
                if f.len() < end {
                    f.resize(end, 0);
                }
                f[*offset as usize..end].copy_from_slice(data);
                Ok(String::new())
            }
            Op::Read { path } => self
                .files
                .get(*path)
                .map(|f| describe(f))
                .ok_or(libc::ENOENT),
            Op::Truncate { path, size } => {
                let f = self.files.get_mut(*path).ok_or(libc::ENOENT)?;
                f.resize(*size as usize, 0);
                Ok(String::new())
            }
            Op::Unlink { path } => self
                .files
                .remove(*path)
                .map(|_| String::new())
                .ok_or(libc::ENOENT),
            Op::Rename { from, to } => {
                if !self.files.contains_key(*from) || !self.parent_exists(to) {
                    return Err(libc::ENOENT);
                }
                let body = self.files.remove(*from).unwrap();
                self.files.insert(to.to_string(), body);
                Ok(String::new())
            }
            Op::Mkdir if self.dir => Err(libc::EEXIST),
            Op::Mkdir => {
                self.dir = true;
                Ok(String::new())
            }
            Op::Rmdir if !self.dir => Err(libc::ENOENT),
            Op::Rmdir if self.files.keys().any(|k| k.starts_with("d/")) => Err(libc::ENOTEMPTY),
            Op::Rmdir => {
                self.dir = false;
                Ok(String::new())
            }
            Op::List { sub: true } if !self.dir => Err(libc::ENOENT),
            Op::List { sub } => {
                let mut names = BTreeSet::new();
                for k in self.files.keys() {
                    match (sub, k.strip_prefix("d/")) {
                        (true, Some(n)) => names.insert(n.to_string()),
                        (false, None) => names.insert(k.clone()),
                        _ => false,
                    };
                }
                if !sub && self.dir {
                    names.insert(DIR.to_string());
                }
                Ok(names.into_iter().collect::<Vec<_>>().join(","))
            }
        }
    }
}

/// Size and bytes, as compared.
fn describe(bytes: &[u8]) -> String {
    format!("{} bytes {:?}", bytes.len(), bytes)
}

/// The inode of `path`'s parent and its last component.
async fn parent_of<'p>(fs: &S3Fs, path: &'p str) -> Result<(u64, &'p str), i32> {
    match path.split_once('/') {
        None => Ok((ROOT_INO, path)),
        Some((dir, name)) => {
            let attr = fs
                .lookup(ROOT_INO, OsStr::new(dir))
                .await
                .map_err(|e| e.errno)?;
            Ok((attr.ino.0, name))
        }
    }
}

async fn lookup(fs: &S3Fs, path: &str) -> Result<(u64, u64), i32> {
    let (parent, name) = parent_of(fs, path).await?;
    let attr = fs
        .lookup(parent, OsStr::new(name))
        .await
        .map_err(|e| e.errno)?;
    Ok((attr.ino.0, attr.size))
}

/// Runs `op` on the core.
async fn run(fs: &S3Fs, op: &Op) -> Outcome {
    let e = |e: s3mount::error::FsError| e.errno;
    match op {
        Op::Write {
            path,
            offset,
            data,
            trunc,
        } => {
            let (parent, name) = parent_of(fs, path).await?;
            let fh = match fs.lookup(parent, OsStr::new(name)).await {
                Ok(attr) => {
                    let flags = libc::O_WRONLY | if *trunc { libc::O_TRUNC } else { 0 };
                    fs.open(attr.ino.0, flags, 0).await.map_err(e)?.0
                }
                Err(err) if err.errno == libc::ENOENT => {
                    let flags = libc::O_WRONLY | libc::O_CREAT;
                    fs.create(parent, OsStr::new(name), 0o644, flags, 0)
                        .await
                        .map_err(e)?
                        .1
                }
                Err(err) => return Err(err.errno),
            };
            let written = fs.write(fh, *offset, data).await;
            let flushed = fs.flush(fh, 0).await;
            fs.release(fh).await;
            assert_eq!(written.map_err(e)?, data.len() as u32, "short write");
            flushed.map_err(e)?;
            Ok(String::new())
        }
        Op::Read { path } => {
            let (ino, size) = lookup(fs, path).await?;
            let (fh, _) = fs.open(ino, libc::O_RDONLY, 0).await.map_err(e)?;
            // As the kernel does: no read past the size it was told.
            let got = read_all(fs, fh, size as usize).await;
            fs.release(fh).await;
            let got = got?;
            assert_eq!(
                got.len() as u64,
                size,
                "{path}: stat size and bytes read differ"
            );
            Ok(describe(&got))
        }
        Op::Truncate { path, size } => {
            let (ino, _) = lookup(fs, path).await?;
            let change = AttrChange {
                size: Some(*size),
                ..Default::default()
            };
            fs.setattr(ino, None, change).await.map_err(e)?;
            Ok(String::new())
        }
        Op::Unlink { path } => {
            let (parent, name) = parent_of(fs, path).await?;
            fs.unlink(parent, OsStr::new(name)).await.map_err(e)?;
            Ok(String::new())
        }
        Op::Rename { from, to } => {
            let (p1, n1) = parent_of(fs, from).await?;
            let (p2, n2) = parent_of(fs, to).await?;
            fs.rename(p1, OsStr::new(n1), p2, OsStr::new(n2), 0)
                .await
                .map_err(e)?;
            Ok(String::new())
        }
        Op::Mkdir => {
            fs.mkdir(ROOT_INO, OsStr::new(DIR), 0o755, 0)
                .await
                .map_err(e)?;
            Ok(String::new())
        }
        Op::Rmdir => {
            fs.rmdir(ROOT_INO, OsStr::new(DIR)).await.map_err(e)?;
            Ok(String::new())
        }
        Op::List { sub } => {
            let ino = if *sub {
                lookup(fs, DIR).await?.0
            } else {
                ROOT_INO
            };
            let fh = fs.opendir(ino).map_err(e)?;
            let entries = fs.readdir(fh, 0).await;
            fs.releasedir(fh);
            let names: BTreeSet<String> = entries
                .map_err(e)?
                .iter()
                .map(|d| d.name.clone())
                .filter(|n| n != "." && n != "..")
                .collect();
            Ok(names.into_iter().collect::<Vec<_>>().join(","))
        }
    }
}

/// Runs `ops` on a fresh core and model; `Err` names the first divergence.
async fn check(ops: &[Op]) -> Result<(), String> {
    let mem = Arc::new(MemStore::new());
    let fs = fs_over(mem.clone() as Arc<dyn ObjectStore>);
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        let want = model.apply(op);
        let got = run(&fs, op).await;
        if got != want {
            return Err(format!(
                "op {i} {op:?}: the core answered {got:?}, the model {want:?}"
            ));
        }
    }
    // The bucket holds exactly the model's files (and the directory's marker).
    let mut want: BTreeMap<String, Vec<u8>> = model.files.clone();
    if model.dir {
        want.insert("d/".into(), Vec::new());
    }
    let got: BTreeMap<String, Vec<u8>> = mem
        .keys()
        .into_iter()
        .map(|k| {
            let body = mem.body(&k).unwrap().to_vec();
            (k, body)
        })
        .collect();
    if got != want {
        return Err(format!("final keys: store {got:?}, model {want:?}"));
    }
    Ok(())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn operation_sequences_match_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let result = runtime().block_on(check(&ops));
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
