//! The `s3mount` binary: parse flags, set up logging, mount.

use clap::Parser;

fn main() {
    let args = s3mount::cli::Args::parse();
    if let Err(e) = s3mount::logging::init(args.debug, args.log_directory.as_deref()) {
        eprintln!("s3mount: error: {e}");
        std::process::exit(1);
    }
    if let Err(e) = s3mount::mount::run(args) {
        eprintln!("s3mount: error: {e}");
        std::process::exit(1);
    }
}
