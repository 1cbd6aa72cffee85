//! The `s3mount` binary: parse flags, go to the background unless `--foreground`, set up
//! logging, mount.

use s3mount::cli::{self, ArgsError};
use s3mount::daemon::{self, Readiness};
use s3mount::logging::{self, LogTarget};

fn main() {
    let mut args = match cli::Args::parse_from_args(std::env::args_os()) {
        Ok(args) => args,
        Err(ArgsError::Clap(e)) => e.exit(),
        Err(ArgsError::Options(message)) => die(&message),
    };
    if let Some(dir) = &args.generate_man {
        match cli::write_man_page(dir) {
            Ok(path) => println!("{}", path.display()),
            Err(e) => die(&e),
        }
        return;
    }
    if let Some(shell) = args.generate_completions {
        cli::print_completions(shell);
        return;
    }
    if let Err(e) = args.absolutize_paths() {
        die(&e);
    }

    // Fork first, while there is only one thread; the child does everything else.
    let readiness = if args.foreground {
        Readiness::foreground()
    } else {
        daemon::daemonize().unwrap_or_else(|e| die(&e))
    };
    let target = match (&args.log_directory, args.foreground) {
        (Some(dir), _) => LogTarget::Directory(dir.clone()),
        (None, true) => LogTarget::Stderr,
        (None, false) => LogTarget::Syslog,
    };
    let notes = match logging::init(args.debug, &target) {
        Ok(note) => note.into_iter().collect(),
        Err(e) => {
            readiness.fail(&e);
            std::process::exit(1);
        }
    };
    if let Err(e) = s3mount::mount::run(args, readiness.clone(), notes) {
        if target != LogTarget::Stderr {
            tracing::error!("{e}");
        }
        readiness.fail(&e);
        std::process::exit(1);
    }
}

fn die(message: &str) -> ! {
    eprintln!("s3mount: error: {message}");
    std::process::exit(1);
}
