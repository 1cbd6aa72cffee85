//! Running in the background, and telling whoever started s3mount when the mount is ready.
//!
//! Without `--foreground`, [`daemonize`] forks while the process is still single-threaded
//! (before the tokio runtime or any logging thread exists). The parent only waits: it reads a
//! pipe until the child reports, then exits 0 once the mount is live, or prints the child's
//! one-line error and exits 1. The child does all the work — checks, S3 client, mount — and
//! reports through [`Readiness`]. When it is ready it points its stdin, stdout and stderr at
//! /dev/null, starts a new session (so a closing terminal does not take it down), moves to `/`,
//! and only then writes "ready", so a caller that waits for the parent's output (a shell
//! capturing `$(...)`, `mount(8)`, systemd) is never held by the daemon.
//!
//! In both modes, readiness is also sent to systemd when `NOTIFY_SOCKET` is set (`READY=1`
//! with `MAINPID`), so a `Type=notify` unit works, and `STOPPING=1` on the way out.
//!
//! Design note: "the mount is live" is proven, not assumed: the FUSE handshake has completed
//! when `fuser::Session::new` returns, and `mount.rs` then `stat`s the mount point through the
//! kernel (answered by the session threads) before declaring readiness.
//!
//! The system calls (pipe2, fork, waitpid, dup2, setsid) go through `nix`; only `fork` needs
//! the caller to vouch for it, and it is sound because the process has one thread then.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe2, setsid, ForkResult, Pid};

use crate::startup::StartupError;

/// How the outcome of mounting is reported.
#[derive(Clone)]
pub struct Readiness {
    /// `--foreground`: errors go to stderr.
    foreground: bool,
    state: Arc<Mutex<State>>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

enum State {
    /// Not reported yet; in the background child, with the pipe to the waiting parent.
    Pending(Option<std::fs::File>),
    /// Readiness (or failure) was reported.
    Done,
}

const READY: &str = "ready";

impl Readiness {
    /// For `--foreground`: errors are printed to stderr, readiness only goes to systemd.
    pub fn foreground() -> Readiness {
        Readiness {
            foreground: true,
            state: Arc::new(Mutex::new(State::Pending(None))),
            stopping: Default::default(),
        }
    }

    /// Whether this is the background child (logs must not go to the terminal).
    pub fn is_background(&self) -> bool {
        !self.foreground
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mount is live. `notes` are extra lines for the parent to print (e.g. where the logs
    /// go when syslog is missing). In the background child this detaches from the terminal.
    pub fn ready(&self, status: &str, notes: &[String]) {
        let previous = std::mem::replace(&mut *self.lock(), State::Done);
        if let State::Pending(Some(mut pipe)) = previous {
            detach();
            let mut message = String::from(READY);
            for note in notes {
                message.push('\n');
                message.push_str(note);
            }
            // The parent may have been killed meanwhile; nothing to do about it then.
            let _ = pipe.write_all(message.as_bytes());
        }
        sd_notify(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ));
    }

    /// A line for the user before the mount is ready (a warning, or what s3mount is waiting
    /// for): printed to stderr, which in the background child is still the caller's terminal
    /// until [`Readiness::ready`] detaches it. After readiness it is dropped; callers log it.
    pub fn notice(&self, line: &str) {
        if matches!(*self.lock(), State::Pending(_)) {
            eprintln!("s3mount: {line}");
        }
    }

    /// Mounting (or serving) failed with `message` (one line). In the foreground it goes to
    /// stderr. In the background, before readiness, the waiting parent prints it; after
    /// readiness there is nobody to tell but the log, which the caller writes.
    pub fn fail(&self, message: &str) {
        let previous = std::mem::replace(&mut *self.lock(), State::Done);
        if self.foreground {
            eprintln!("s3mount: error: {message}");
        } else if let State::Pending(Some(mut pipe)) = previous {
            let _ = pipe.write_all(format!("error: {message}").as_bytes());
        }
    }

    /// The process is about to unmount and exit (told to systemd once).
    pub fn stopping(&self) {
        if !self
            .stopping
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            sd_notify("STOPPING=1");
        }
    }
}

/// Forks into the background. Returns in the child, with the [`Readiness`] to report through;
/// the parent never returns: it exits with the child's outcome.
///
/// Must be called while the process has a single thread (checked).
pub fn daemonize() -> Result<Readiness, StartupError> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1);
    if threads > 1 {
        return Err(StartupError::ThreadsRunning { threads });
    }
    let (read_end, write_end) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| StartupError::Pipe(e.into()))?;
    // Anything buffered would be written twice otherwise.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fork is sound here because the process has one thread (checked above): no lock
    // can be held by a thread that the child would lack, so the child may run any code.
    match unsafe { fork() } {
        Err(e) => Err(StartupError::Fork(e.into())),
        Ok(ForkResult::Child) => {
            drop(read_end);
            Ok(Readiness {
                foreground: false,
                state: Arc::new(Mutex::new(State::Pending(Some(std::fs::File::from(
                    write_end,
                ))))),
                stopping: Default::default(),
            })
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            wait_for_child(child, std::fs::File::from(read_end))
        }
    }
}

/// The parent's side: wait for the child's report and exit accordingly.
fn wait_for_child(child: Pid, mut pipe: std::fs::File) -> ! {
    let mut message = String::new();
    let read = pipe.read_to_string(&mut message);
    let mut lines = message.lines();
    match lines.next() {
        Some(READY) if read.is_ok() => {
            for note in lines {
                eprintln!("s3mount: {note}");
            }
            std::process::exit(0);
        }
        Some(line) if line.starts_with("error: ") => {
            eprintln!("s3mount: {line}");
            reap(child);
            std::process::exit(1);
        }
        _ => {
            // The child died without a word (killed, or a crash).
            let status = reap(child);
            eprintln!(
                "s3mount: error: the background s3mount process exited before the mount was \
                 ready ({status}); run with --foreground to see why"
            );
            std::process::exit(1);
        }
    }
}

/// Waits for `child` and describes how it ended.
fn reap(child: Pid) -> String {
    match waitpid(child, None) {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, signal, _)) => format!("killed by signal {}", signal as i32),
        _ => "status unknown".into(),
    }
}

/// Detaches the background child from the caller: stdio to /dev/null, a new session, cwd `/`.
fn detach() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = dup2_stdin(&null);
        let _ = dup2_stdout(&null);
        let _ = dup2_stderr(&null);
    }
    let _ = setsid();
    let _ = std::env::set_current_dir("/");
}

/// Sends `message` to systemd's notification socket, if `NOTIFY_SOCKET` names one.
pub fn sd_notify(message: &str) {
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(name.as_bytes())
    } else {
        SocketAddr::from_pathname(&path)
    };
    let Ok(addr) = addr else {
        tracing::debug!("NOTIFY_SOCKET {path:?} is not a usable socket address");
        return;
    };
    match UnixDatagram::unbound().and_then(|s| s.send_to_addr(message.as_bytes(), &addr)) {
        Ok(_) => tracing::debug!("notified systemd: {}", message.replace('\n', " ")),
        Err(e) => tracing::debug!("cannot notify systemd at {path}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_notify_sends_to_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        // No other unit test reads NOTIFY_SOCKET.
        std::env::set_var("NOTIFY_SOCKET", &path);
        sd_notify("READY=1");
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
