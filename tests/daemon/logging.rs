//! Colour in foreground logs: plain text into a file or a pipe (which is what journald gets
//! from the systemd unit, which runs `--foreground`), ANSI colours on a terminal unless
//! `NO_COLOR` is set (<https://no-color.org>). Each run is a mount that fails at once against a
//! closed loopback port, after logging a few lines with `--debug`.

use super::*;

/// ANSI escape sequences start with ESC `[`.
const ANSI: &str = "\x1b[";

/// The s3mount command line (program first) of a mount against a closed port.
fn failing_mount_argv(mountpoint: &Path) -> Vec<String> {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let mut argv: Vec<String> = vec![s3mount_bin().to_string_lossy().into_owned()];
    argv.extend(
        [
            "--foreground",
            "--debug",
            "--max-attempts",
            "1",
            "--endpoint-url",
            &endpoint,
            "--force-path-style",
            "--region",
            REGION,
            "no-such-bucket",
        ]
        .map(String::from),
    );
    argv.push(mountpoint.to_string_lossy().into_owned());
    argv
}

/// Runs `cmd` (stdout and stderr as set by the caller) and waits for it: at most 60 s.
fn run(mut cmd: Command) {
    die_with_parent(&mut cmd, libc::SIGKILL);
    let mut child = cmd.stdin(Stdio::null()).spawn().expect("spawn");
    if wait_timeout(&mut child, Duration::from_secs(60)).is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} did not exit within 60 s");
    }
}

/// The log lines carry tracing's targets, so there was something to colour.
fn assert_has_log_lines(output: &str) {
    assert!(
        output.contains("s3mount::") && output.contains("s3mount: error:"),
        "expected log lines and the error line:\n{output}"
    );
}

#[test]
fn logs_to_a_file_or_a_pipe_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = dir.path().join("mnt");
    fs::create_dir(&mountpoint).unwrap();
    let argv = failing_mount_argv(&mountpoint);

    // stderr into a file
    let log = dir.path().join("stderr");
    let mut cmd = Command::new(&argv[0]);
    hermetic_aws_env(&mut cmd)
        .args(&argv[1..])
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap());
    run(cmd);
    let output = read_lossy(&log);
    assert_has_log_lines(&output);
    assert!(
        !output.contains(ANSI),
        "colour codes in a file:\n{output:?}"
    );

    // stderr into a pipe
    let mut cmd = Command::new(&argv[0]);
    hermetic_aws_env(&mut cmd)
        .args(&argv[1..])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    let out = cmd.output().expect("run s3mount");
    let output = String::from_utf8_lossy(&out.stderr);
    assert_has_log_lines(&output);
    assert!(
        !output.contains(ANSI),
        "colour codes in a pipe:\n{output:?}"
    );
}

/// The same mount under a pseudo-terminal (`script` from util-linux), with `NO_COLOR` as
/// given (None: unset); returns what the terminal showed.
fn on_a_terminal(no_color: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = dir.path().join("mnt");
    fs::create_dir(&mountpoint).unwrap();
    let shell_line = failing_mount_argv(&mountpoint)
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let typescript = dir.path().join("typescript");
    let mut cmd = Command::new("script");
    hermetic_aws_env(&mut cmd)
        .args(["--quiet", "--return", "--command", &shell_line])
        .arg(&typescript)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match no_color {
        Some(value) => cmd.env("NO_COLOR", value),
        None => cmd.env_remove("NO_COLOR"),
    };
    run(cmd);
    let output = read_lossy(&typescript);
    assert_has_log_lines(&output);
    output
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color() {
    let output = on_a_terminal(None);
    assert!(
        output.contains(ANSI),
        "no colour on a terminal:\n{output:?}"
    );
    let output = on_a_terminal(Some(""));
    assert!(
        output.contains(ANSI),
        "an empty NO_COLOR does not count:\n{output:?}"
    );
    let output = on_a_terminal(Some("1"));
    assert!(
        !output.contains(ANSI),
        "colour on a terminal with NO_COLOR=1:\n{output:?}"
    );
}
