//! Logging setup: `tracing` to stderr or to a file in `--log-directory`.
//!
//! `RUST_LOG` wins when set; otherwise the level is `info`, or `debug` for s3mount's own
//! modules with `--debug`. Nothing logged anywhere includes a credential: the storage layer
//! logs operation names, keys, status codes and S3 error codes only.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init(debug: bool, log_directory: Option<&Path>) -> Result<(), String> {
    let default = if debug {
        "warn,s3mount=debug,fuser=warn"
    } else {
        "warn,fuser=error,s3mount=info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log_directory {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
            let path = dir.join(format!("s3mount-{}.log", std::process::id()));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
