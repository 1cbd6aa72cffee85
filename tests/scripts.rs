//! The shell scripts: `scripts/install.sh` splits the debug info off the installed binary
//! (where gdb and Rust's backtraces find it), and `scripts/lib.sh` waits, saying so, while
//! another package manager holds apt's or dpkg's locks. tests/system_tool.rs has the basic
//! install test (every file in its place).
//!
//! The lock tests hold the real locks of this machine for a few seconds, so they need root
//! (they say so and pass without it); they install nothing new and need no network:
//! `apt-get install` of a package that is already installed and marked manual.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------------------------------------
// install.sh: debug info in a separate file
// ---------------------------------------------------------------------------------------------

/// The sections of an ELF file: (name, size in bytes), from `readelf -S`.
fn sections(file: &Path) -> Vec<(String, u64)> {
    let out = run(Command::new("readelf").arg("-SW").arg(file));
    text(&out.stdout)
        .lines()
        .filter_map(|line| {
            // "  [35] .debug_info  PROGBITS  0000000000000000 29ffac9 4e2ceb9 00 ..."
            let fields: Vec<&str> = line.split_once(']')?.1.split_whitespace().collect();
            let size = u64::from_str_radix(fields.get(4)?, 16).ok()?;
            Some((fields[0].to_string(), size))
        })
        .collect()
}

fn has_section(file: &Path, name: &str) -> bool {
    sections(file).iter().any(|(n, _)| n == name)
}

/// The GNU build id of an ELF file, in hex.
fn build_id(file: &Path) -> String {
    let out = run(Command::new("readelf").arg("-n").arg(file));
    text(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID:"))
        .map(|id| id.trim().to_string())
        .unwrap_or_else(|| panic!("{} has no build id", file.display()))
}

fn install(binary: &Path, location: &[&str]) {
    run(Command::new("bash")
        .arg(script("install.sh"))
        .args(location)
        .arg("--binary")
        .arg(binary));
}

const MIB: u64 = 1 << 20;

/// Installs `binary` with `--destdir` and checks the split: no debug info left in the
/// installed binary (which shrinks by at least the size of its debug sections), all of it in
/// /usr/lib/debug/.build-id/XX/YYYY.debug. Returns the installed size.
fn install_and_check_split(binary: &Path) -> u64 {
    let input: u64 = std::fs::metadata(binary).unwrap().len();
    let debug_bytes: u64 = sections(binary)
        .iter()
        .filter(|(name, _)| name.starts_with(".debug_") && name != ".debug_gdb_scripts")
        .map(|(_, size)| size)
        .sum();
    assert!(
        debug_bytes > 0,
        "{} has no debug info to split",
        binary.display()
    );

    let destdir = tempfile::tempdir().unwrap();
    install(binary, &["--destdir", destdir.path().to_str().unwrap()]);
    let installed = destdir.path().join("usr/local/bin/s3mount");
    let size = std::fs::metadata(&installed).unwrap().len();
    for section in [".debug_info", ".debug_line", ".debug_str"] {
        assert!(
            !has_section(&installed, section),
            "the installed binary still has {section}"
        );
    }
    assert!(has_section(&installed, ".gnu_debuglink"));
    assert!(
        size <= input - debug_bytes,
        "installed {size} bytes from {input} with {debug_bytes} of debug info"
    );

    let id = build_id(&installed);
    let debug_file = destdir.path().join(format!(
        "usr/lib/debug/.build-id/{}/{}.debug",
        &id[..2],
        &id[2..]
    ));
    assert!(debug_file.is_file(), "no {}", debug_file.display());
    for section in [".debug_info", ".debug_line"] {
        assert!(
            has_section(&debug_file, section),
            "debug file lacks {section}"
        );
    }
    assert_eq!(build_id(&debug_file), id);
    let version = run(Command::new(&installed).arg("--version"));
    assert!(text(&version.stdout).starts_with("s3mount "));
    eprintln!(
        "{}: {} MiB installed as {} MiB plus {} MiB of debug info",
        binary.display(),
        input / MIB,
        size / MIB,
        std::fs::metadata(&debug_file).unwrap().len() / MIB
    );
    size
}

#[test]
fn install_splits_off_the_debug_info() {
    install_and_check_split(&s3mount_bin());

    // The bound on the installed size is for release builds (a debug build's code alone is
    // larger); checked when one is at hand, e.g. from scripts/install.sh or scripts/bench.sh.
    let release = s3mount_bin()
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("release/s3mount"));
    match release {
        Some(release) if release.is_file() => {
            let size = install_and_check_split(&release);
            assert!(size < 30 * MIB, "installed release binary: {size} bytes");
        }
        _ => eprintln!("no release build next to the test binary: 30 MB bound not checked"),
    }
}

/// With a prefix of its own, the debug info goes next to the binary (`.debug/s3mount.debug`),
/// where the `.gnu_debuglink` leads addr2line (as it leads gdb and Rust's backtraces): an
/// address of `s3mount::main` resolves to its line in src/main.rs.
#[test]
fn installed_binary_resolves_lines_through_its_debug_file() {
    let prefix = tempfile::tempdir().unwrap();
    install(
        &s3mount_bin(),
        &["--prefix", prefix.path().to_str().unwrap()],
    );
    let installed = prefix.path().join("bin/s3mount");
    let debug_file = prefix.path().join("bin/.debug/s3mount.debug");
    assert!(debug_file.is_file(), "no {}", debug_file.display());
    assert!(!has_section(&installed, ".debug_info"));

    let symbols = run(Command::new("nm").arg(&debug_file));
    let main = text(&symbols.stdout)
        .lines()
        .find_map(|l| {
            let (addr, name) = l.split_once(' ')?;
            name.contains("_ZN7s3mount4main17")
                .then(|| addr.to_string())
        })
        .expect("s3mount::main in the debug file's symbols");
    let resolved = run(Command::new("addr2line")
        .arg("-e")
        .arg(&installed)
        .arg(format!("0x{main}")));
    let line = text(&resolved.stdout);
    assert!(line.contains("src/main.rs:"), "addr2line says {line:?}");
}

// ---------------------------------------------------------------------------------------------
// lib.sh: waiting for apt's and dpkg's locks
// ---------------------------------------------------------------------------------------------

const FRONTEND_LOCK: &str = "/var/lib/dpkg/lock-frontend";
const DPKG_LOCK: &str = "/var/lib/dpkg/lock";
const LISTS_LOCK: &str = "/var/lib/apt/lists/lock";

/// The lock tests take turns: each expects to be the only holder.
static APT_LOCKS: Mutex<()> = Mutex::new(());

/// Why the lock tests cannot run here, if they cannot.
fn cannot_hold_apt_locks() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: the apt and dpkg locks cannot be taken".into());
    }
    for lock in [FRONTEND_LOCK, DPKG_LOCK, LISTS_LOCK] {
        if !Path::new(lock).exists() {
            return Some(format!("no {lock} (not a Debian system?)"));
        }
    }
    None
}

/// A process holding fcntl (POSIX) write locks on `locks`, as apt and dpkg take them, for
/// `secs` seconds; returned once it holds them all.
fn hold_locks(secs: f64, locks: &[&str]) -> Child {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import fcntl, os, sys, time\n\
         fds = [os.open(p, os.O_RDWR) for p in sys.argv[2:]]\n\
         for fd in fds: fcntl.lockf(fd, fcntl.LOCK_EX)\n\
         print('locked', flush=True)\n\
         time.sleep(float(sys.argv[1]))",
    ])
    .arg(secs.to_string())
    .args(locks)
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    die_with_parent(&mut cmd, libc::SIGKILL);
    let mut child = cmd.spawn().expect("run python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked", "the lock holder failed");
    child
}

/// `bash -c 'source scripts/lib.sh; BODY'`.
fn lib_sh(body: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!(
            "set -euo pipefail; source '{}'; {body}",
            script("lib.sh").display()
        ))
        .stdin(Stdio::null());
    cmd
}

/// A package that `apt-get install` leaves as it is: installed and marked manual.
fn installed_manual_package() -> Option<&'static str> {
    let out = Command::new("apt-mark")
        .args(["showmanual", "fuse3", "util-linux", "attr", "rsync"])
        .output()
        .ok()?;
    let manual = text(&out.stdout);
    ["fuse3", "util-linux", "attr", "rsync"]
        .into_iter()
        .find(|p| manual.lines().any(|l| l == *p))
}

#[test]
fn apt_install_waits_for_the_dpkg_lock_and_says_so() {
    let _turn = APT_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = cannot_hold_apt_locks() {
        eprintln!("skipped: {why}");
        return;
    }
    let Some(package) = installed_manual_package() else {
        eprintln!("skipped: none of fuse3, util-linux, attr, rsync is installed and manual");
        return;
    };
    let mut holder = hold_locks(3.0, &[FRONTEND_LOCK, DPKG_LOCK]);
    let started = Instant::now();
    // No apt-get update: it needs the network.
    let out = lib_sh(&format!("S3M_APT_UPDATED=1; s3m_apt_install {package}"))
        .output()
        .unwrap();
    let took = started.elapsed();
    let _ = holder.wait();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "s3m_apt_install failed:\n{stderr}");
    let waiting = format!(
        "waiting for another package manager to finish: {FRONTEND_LOCK} is held by process {} (",
        holder.id()
    );
    assert!(stderr.contains(&waiting), "no {waiting:?} in:\n{stderr}");
    assert!(
        took >= Duration::from_millis(1500),
        "returned after {took:?}, before the lock was free"
    );
}

#[test]
fn lock_holder_is_found_for_the_lists_lock() {
    let _turn = APT_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = cannot_hold_apt_locks() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut holder = hold_locks(2.0, &[LISTS_LOCK]);
    let out = lib_sh("s3m_apt_lock_holder").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    let expected = format!("{LISTS_LOCK} is held by process {} (", holder.id());
    assert!(said.starts_with(&expected), "{said:?}");
    let _ = holder.wait();
    let out = lib_sh("s3m_apt_lock_holder").output().unwrap();
    assert!(
        !out.status.success(),
        "a free lock is reported held: {}",
        text(&out.stdout)
    );
}
