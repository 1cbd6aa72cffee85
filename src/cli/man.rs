//! The man page, `s3mount.1`. clap_mangen renders NAME, SYNOPSIS, DESCRIPTION and OPTIONS
//! from the clap definition (its help texts are the documentation); the sections clap knows
//! nothing about follow, written in roff in [`MAN_EXTRA`].
//!
//! The help texts are written for the terminal, with code in Markdown backticks. The page
//! sets those spans in bold instead, and writes the few non-ASCII characters as groff's
//! `\[uXXXX]` escapes, so it reads the same with or without preconv (and with mandoc).
//! The flag definitions themselves stay untouched: the rewriting is done on the rendered
//! page.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::Args;
use crate::startup::StartupError;

/// Writes the man page, `s3mount.1`, into `dir`; returns its path.
pub fn write_man_page(dir: &Path) -> Result<PathBuf, StartupError> {
    std::fs::create_dir_all(dir).map_err(|source| StartupError::CreateDirectory {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join("s3mount.1");
    let page = render_man_page().map_err(StartupError::RenderManPage)?;
    std::fs::write(&path, page).map_err(|source| StartupError::WriteFile {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The whole page, in roff.
fn render_man_page() -> std::io::Result<String> {
    let man = clap_mangen::Man::new(Args::command())
        .section("1")
        .manual("s3mount manual");
    let mut clap_part = Vec::new();
    man.render_title(&mut clap_part)?;
    man.render_name_section(&mut clap_part)?;
    man.render_synopsis_section(&mut clap_part)?;
    man.render_description_section(&mut clap_part)?;
    man.render_options_section(&mut clap_part)?;
    let mut version = Vec::new();
    man.render_version_section(&mut version)?;
    let mut page = String::new();
    for line in String::from_utf8_lossy(&clap_part).lines() {
        page.push_str(&escape_non_ascii(&bold_code_spans(line)));
        page.push('\n');
    }
    page.push_str(MAN_EXTRA);
    page.push_str(&String::from_utf8_lossy(&version));
    Ok(page)
}

/// `` `code` `` spans of one line of roff in bold (`\fBcode\fR`); a backtick left without
/// its pair becomes groff's grave accent, `\(ga`.
fn bold_code_spans(line: &str) -> String {
    let pieces: Vec<&str> = line.split('`').collect();
    let pairs = (pieces.len() - 1) / 2;
    let mut out = String::with_capacity(line.len() + 6 * pairs);
    for (i, piece) in pieces.iter().enumerate() {
        if i > 2 * pairs {
            out.push_str(r"\(ga");
        } else if i % 2 == 1 {
            out.push_str(r"\fB");
        } else if i > 0 {
            out.push_str(r"\fR");
        }
        out.push_str(piece);
    }
    out
}

/// Non-ASCII characters as `\[uXXXX]`, which groff and mandoc read whatever the input
/// encoding.
fn escape_non_ascii(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!(r"\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

/// Sections of the man page that clap does not know about (roff). A raw string: every font
/// change is written `\fB`, `\fI`, `\fR` as roff reads it (the unit tests check that no
/// control character stands in for the backslash).
const MAN_EXTRA: &str = r#".SH "FSTAB AND MOUNT(8)"
From /etc/fstab or \fBmount \-t fuse.s3mount\fR, fuse3's \fBmount.fuse3\fR runs
\fBs3mount\fR \fIBUCKET\fR \fIMOUNTPOINT\fR \fB\-o\fR \fIOPTIONS\fR.
Every flag can be given as an option without its dashes (\fBendpoint\-url=\fR\fIURL\fR,
\fBregion=\fR\fIR\fR, \fBallow_other\fR, \fBuid=\fR\fIN\fR; \fB_\fR and \fB\-\fR are the same);
\fBro\fR means \fB\-\-read\-only\fR and \fBnoexec\fR is passed to the kernel. The standard
options rw, dev, nodev, suid, nosuid, exec, atime, noatime, auto, noauto, user, users,
_netdev, nofail, defaults and x\-systemd.* are accepted and ignored. Any other option is an
error that names it.
.SH EXAMPLES
.nf
s3mount my\-bucket /mnt/data
s3mount s3://my\-bucket/photos/ /mnt/photos \-\-read\-only
s3mount my\-bucket /mnt/data \-\-endpoint\-url http://127.0.0.1:9000 \-\-force\-path\-style
s3mount my\-bucket /mnt/data \-f \-\-debug \-\-metrics\-addr 127.0.0.1:9464
mount \-t fuse.s3mount my\-bucket /mnt/data \-o ro,allow_other,region=eu\-west\-1
.fi
.PP
An /etc/fstab line:
.PP
.nf
my\-bucket /mnt/data fuse.s3mount _netdev,nofail,allow_other,region=eu\-west\-1 0 0
.fi
.SH "EXIT STATUS"
0 once the mount is ready (in the background) or after a clean unmount (with
\fB\-\-foreground\fR); 1 when a check before mounting fails, with one line on stderr that
starts with "s3mount: error:"; 2 for a usage error.
.SH ENVIRONMENT
.TP
\fBAWS_ACCESS_KEY_ID\fR, \fBAWS_SECRET_ACCESS_KEY\fR, \fBAWS_SESSION_TOKEN\fR, \fBAWS_PROFILE\fR, \fBAWS_REGION\fR
The standard AWS credential and region chain.
.TP
\fBAWS_ENDPOINT_URL\fR
Same as \fB\-\-endpoint\-url\fR.
.TP
\fBRUST_LOG\fR
Log filter, overriding \fB\-\-debug\fR (e.g. s3mount::requests=debug).
.TP
\fBNO_COLOR\fR
Set and not empty: logs on a terminal are not coloured (they never are elsewhere).
.TP
\fBNOTIFY_SOCKET\fR
Set by systemd: s3mount sends READY=1 once mounted (Type=notify units).
.SH FILES
.TP
\fI/etc/fuse.conf\fR
\fBuser_allow_other\fR must be set there for non\-root users to use \fB\-\-allow\-other\fR.
.TP
\fI/dev/log\fR
Where logs go in the background without \fB\-\-log\-directory\fR (syslog or journald).
.SH "SEE ALSO"
\fBmount\fR(8), \fBmount.fuse3\fR(8), \fBfusermount3\fR(1), \fBfstab\fR(5), \fBsystemd.mount\fR(5)
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The sections a reader looks for, in the order of the page.
    const SECTIONS: &[&str] = &[
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "FSTAB AND MOUNT(8)",
        "EXAMPLES",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SEE ALSO",
    ];

    /// The page as `man` shows it, in plain text (no bold, no hyphenation, long lines), and
    /// groff's warnings (all of them enabled).
    fn render_with_groff(page: &Path) -> (String, String) {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-rHY=0", "-rLL=200n", "-P-cbou"])
            .arg(page)
            .output()
            .expect("run groff (Debian package groff-base; scripts/test.sh installs it)");
        assert!(out.status.success(), "groff failed: {out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Words that show a font escape that lost its backslash: `\fBmount\fR` read as
    /// `BmountR`, `\fI/etc/fuse.conf\fR` as `I/etc/fuse.confR`, `\fB\-\-debug\fR` as
    /// `B--debugR`. A real word starting with B or I and ending with R is all letters.
    fn font_artefacts(text: &str) -> Vec<&str> {
        text.split_whitespace()
            .map(|w| w.trim_matches(|c: char| ",.;:()[]\"'0123456789".contains(c)))
            .filter(|w| {
                w.len() >= 3
                    && (w.starts_with('B') || w.starts_with('I'))
                    && w.ends_with('R')
                    && !w.chars().all(|c| c.is_ascii_uppercase())
            })
            .collect()
    }

    #[test]
    fn man_page_renders_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_man_page(dir.path()).unwrap();
        let source = std::fs::read_to_string(&path).unwrap();
        let (text, warnings) = render_with_groff(&path);
        // What a reader sees: a terminal or `col -b` drops control characters.
        let visible: String = text
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .collect();
        assert_eq!(font_artefacts(&visible), Vec::<&str>::new(), "{visible}");
        for bad in ['`', '\u{2018}', '\\', '\u{c}'] {
            assert!(
                !text.contains(bad),
                "the rendered page shows {bad:?}:\n{text}"
            );
        }
        let mut from = 0;
        for section in SECTIONS {
            let at = text[from..]
                .lines()
                .position(|l| l.trim_end() == *section)
                .unwrap_or_else(|| panic!("no section {section:?} in order:\n{text}"));
            from += text[from..]
                .lines()
                .take(at + 1)
                .map(|l| l.len() + 1)
                .sum::<usize>();
        }
        // Code spans of the help texts are bold, and so are the names in the extra sections.
        for bold in [
            r"\fBuser_allow_other\fR",
            r"\fBAWS_ACCESS_KEY_ID\fR",
            r"\fBmount\fR(8)",
        ] {
            assert!(source.contains(bold), "the page lacks {bold:?}");
        }
        assert!(
            source.is_ascii(),
            "non-ASCII characters are written as \\[uXXXX]"
        );
        assert_eq!(warnings, "", "groff warns about the page");
    }

    #[test]
    fn the_extra_sections_hold_no_control_characters() {
        let bad: Vec<char> = MAN_EXTRA
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(bad.is_empty(), "control characters in MAN_EXTRA: {bad:?}");
        assert!(MAN_EXTRA.contains(r"\fBAWS_REGION\fR"));
    }

    #[test]
    fn code_spans_become_bold() {
        assert_eq!(bold_code_spans("a `b` c `d`"), r"a \fBb\fR c \fBd\fR");
        assert_eq!(bold_code_spans("no code"), "no code");
        assert_eq!(bold_code_spans("odd `one"), r"odd \(gaone");
        assert_eq!(bold_code_spans("`x` and `y"), r"\fBx\fR and \(gay");
        assert_eq!(escape_non_ascii("5 × 30 s"), r"5 \[u00D7] 30 s");
    }
}
