//! Logging setup: `tracing` to stderr, to rotating files in `--log-directory`, or to syslog.
//!
//! `RUST_LOG` wins when set; otherwise the level is `info`, or `debug` for s3mount's own
//! modules with `--debug` (which adds one line per S3 request, target `s3mount::requests`).
//! Nothing logged anywhere includes a credential: the storage layer logs operation names,
//! keys, status codes, sizes, latencies and S3 error codes only.
//!
//! Where logs go:
//! - `--foreground` without `--log-directory`: stderr, coloured only when stderr is a terminal
//!   and `NO_COLOR` is unset or empty (<https://no-color.org>): a file, a pipe or journald
//!   (the systemd unit runs `--foreground`) gets plain text;
//! - `--log-directory DIR` (either mode): `DIR/s3mount.YYYY-MM-DD.log`, a new file each day,
//!   the last 7 kept; each line names the process (`s3mount[PID]`), since several mounts may
//!   share a directory;
//! - in the background without `--log-directory`: syslog (`/dev/log`, which journald also
//!   serves: `journalctl -t s3mount`), with facility daemon. Where no syslog socket exists
//!   (containers), the logs go to files in `/var/log/s3mount` (root) or
//!   `~/.local/state/s3mount` instead, and the parent process says so: never to /dev/null.
//!
//! `S3MOUNT_SYSLOG_SOCKET` overrides the syslog socket path (for tests, or unusual systems).

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::startup::StartupError;

/// Where the logs go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard error (foreground default).
    Stderr,
    /// Rotating files in this directory.
    Directory(PathBuf),
    /// Syslog / journald (background default).
    Syslog,
}

/// Daily files, this many kept.
const KEEP_LOG_FILES: usize = 7;

/// Installs the global subscriber. Returns a note for the user when the logs went somewhere
/// other than asked (syslog missing).
pub fn init(debug: bool, target: &LogTarget) -> Result<Option<String>, StartupError> {
    let default = if debug {
        "warn,s3mount=debug,fuser=warn"
    } else {
        "warn,fuser=error,s3mount=info"
    };
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    match target {
        LogTarget::Stderr => {
            tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::io::stderr)
                .with_ansi(colour_wanted(
                    std::io::stderr().is_terminal(),
                    std::env::var_os("NO_COLOR"),
                ))
                .init();
            Ok(None)
        }
        LogTarget::Directory(dir) => {
            init_files(dir, filter())?;
            Ok(None)
        }
        LogTarget::Syslog => {
            let path = syslog_socket_path();
            match Syslog::connect(&path) {
                Ok(syslog) => {
                    tracing_subscriber::fmt()
                        .with_env_filter(filter())
                        .with_writer(syslog)
                        .with_ansi(false)
                        .without_time()
                        .init();
                    Ok(None)
                }
                Err(e) => {
                    let dir = fallback_log_directory();
                    init_files(&dir, filter())?;
                    let note = format!(
                        "no syslog at {} ({e}); logging to {} instead (set --log-directory to \
                         choose)",
                        path.display(),
                        dir.display()
                    );
                    tracing::warn!("{note}");
                    Ok(Some(note))
                }
            }
        }
    }
}

/// Whether logs to stderr get ANSI colours: on a terminal only, and not when `NO_COLOR`
/// is set to anything but the empty string.
fn colour_wanted(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

fn init_files(dir: &Path, filter: EnvFilter) -> Result<(), StartupError> {
    std::fs::create_dir_all(dir).map_err(|source| StartupError::CreateLogDirectory {
        dir: dir.to_path_buf(),
        source,
    })?;
    let appender = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("s3mount")
        .filename_suffix("log")
        .max_log_files(KEEP_LOG_FILES)
        .build(dir)
        .map_err(|source| StartupError::LogFiles {
            dir: dir.to_path_buf(),
            source,
        })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(appender)
        .with_ansi(false)
        .with_timer(TimeAndPid)
        .init();
    Ok(())
}

fn syslog_socket_path() -> PathBuf {
    std::env::var_os("S3MOUNT_SYSLOG_SOCKET")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/log"))
}

/// Where logs go in the background when there is no syslog.
pub fn fallback_log_directory() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/log/s3mount");
    }
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return PathBuf::from(state).join("s3mount");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".local/state/s3mount")
}

/// RFC 3339 time, then `s3mount[PID]`.
struct TimeAndPid;

impl FormatTime for TimeAndPid {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        tracing_subscriber::fmt::time::SystemTime.format_time(w)?;
        write!(w, " s3mount[{}]", std::process::id())
    }
}

// ----- syslog ------------------------------------------------------------------------------

/// Sends each event as one datagram to the local syslog socket, in the format glibc's
/// `syslog(3)` uses without the timestamp (the daemon adds it): `<PRI>s3mount[PID]: MESSAGE`.
struct Syslog {
    socket: UnixDatagram,
    path: PathBuf,
}

/// syslog facility `daemon`.
const LOG_DAEMON: u8 = 3 << 3;

impl Syslog {
    fn connect(path: &Path) -> std::io::Result<Syslog> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(Syslog {
            socket,
            path: path.to_path_buf(),
        })
    }

    fn send(&self, severity: u8, message: &[u8]) {
        let mut datagram = format!(
            "<{}>s3mount[{}]: ",
            LOG_DAEMON | severity,
            std::process::id()
        )
        .into_bytes();
        datagram.extend_from_slice(message);
        if self.socket.send(&datagram).is_err() {
            // The syslog daemon restarted: reconnect once.
            if self.socket.connect(&self.path).is_ok() {
                let _ = self.socket.send(&datagram);
            }
        }
    }
}

/// One event being formatted.
struct SyslogLine<'a> {
    syslog: &'a Syslog,
    severity: u8,
    buf: Vec<u8>,
}

impl Write for SyslogLine<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine<'_> {
    fn drop(&mut self) {
        let text = self.buf.trim_ascii_end();
        if !text.is_empty() {
            self.syslog.send(self.severity, text);
        }
    }
}

fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SyslogLine {
            syslog: self,
            severity: 6,
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        SyslogLine {
            syslog: self,
            severity: severity(meta.level()),
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_are_one_datagram_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let syslog = Syslog::connect(&path).unwrap();
        {
            let mut line = syslog.make_writer();
            line.severity = severity(&Level::WARN);
            line.write_all(b"something happened\n").unwrap();
        }
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert_eq!(
            got,
            format!("<28>s3mount[{}]: something happened", std::process::id())
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some("".into())));
        assert!(!colour_wanted(true, Some("1".into())));
        assert!(!colour_wanted(false, None));
        assert!(!colour_wanted(false, Some("".into())));
    }

    #[test]
    fn missing_syslog_socket_is_an_error() {
        assert!(Syslog::connect(Path::new("/nonexistent/log.sock")).is_err());
    }
}
