#!/usr/bin/env bash
# Install s3mount: the binary, its man page and its shell completions; optionally the systemd
# unit template.
#
#   sudo ./scripts/install.sh [--prefix DIR] [--binary PATH] [--systemd] [--destdir DIR]
#
#   --prefix DIR     install under DIR (default /usr/local): DIR/bin/s3mount,
#                    DIR/share/man/man1/s3mount.1, bash/zsh/fish completions under DIR/share
#   --binary PATH    install this s3mount binary instead of building one (cargo build --release)
#   --systemd        also install packaging/systemd/s3mount@.service into /etc/systemd/system
#                    (ExecStart pointing at the installed binary) and create /etc/s3mount
#   --destdir DIR    stage everything under DIR (for packagers); nothing is run from there
#
# The installed binary carries no debug info: release builds keep line tables (Cargo.toml,
# `debug = 1`, for profiling and readable backtraces), which are most of their size. They go
# into a separate file, where gdb and Rust's own backtraces find them with no setting:
#   --prefix /usr or /usr/local: /usr/lib/debug/.build-id/XX/YYYY.debug (by build id, where
#                    Debian's -dbgsym packages put theirs); the file of the binary being
#                    replaced is removed
#   other prefixes:  PREFIX/bin/.debug/s3mount.debug (next to the binary, by .gnu_debuglink)
# This needs objcopy, strip and readelf (package binutils); without them the binary is
# installed as it is.
#
# After installing into /usr/local (or /usr), `mount -t fuse.s3mount` and /etc/fstab lines
# with type fuse.s3mount work: fuse3's mount.fuse3 runs `s3mount` from the standard PATH
# (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), so no extra helper is needed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=/usr/local
binary=
systemd=0
destdir=

while [ $# -gt 0 ]; do
    case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --systemd) systemd=1; shift ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }

if [ -z "$binary" ]; then
    command -v cargo >/dev/null 2>&1 || { echo "install.sh: cargo not found; install Rust or pass --binary" >&2; exit 1; }
    say "building s3mount (cargo build --release --locked)"
    (cd "$root" && cargo build --release --locked --bin s3mount)
    binary=${CARGO_TARGET_DIR:-$root/target}/release/s3mount
fi
[ -x "$binary" ] || { echo "install.sh: no executable at $binary" >&2; exit 1; }

bin_dir=$destdir$prefix/bin
man_dir=$destdir$prefix/share/man/man1
share=$destdir$prefix/share

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The GNU build id of an ELF file (hex), or nothing.
build_id() {
    [ -f "$1" ] || return 0
    local notes
    notes=$(readelf -n "$1" 2>/dev/null) || return 0
    sed -n 's/^[[:space:]]*Build ID:[[:space:]]*\([0-9a-f]\{4,\}\)$/\1/p' <<<"$notes" | sed -n 1p
}

# Where the debug info of a binary with build id $1 goes (see the top of this file).
debug_file_for() {
    case $prefix in
    /usr | /usr/local) if [ -n "$1" ]; then echo "/usr/lib/debug/.build-id/${1:0:2}/${1:2}.debug"; return; fi ;;
    esac
    echo "$prefix/bin/.debug/s3mount.debug"
}

cp "$binary" "$tmp/s3mount"
debug_file=
if ! command -v objcopy >/dev/null 2>&1 || ! command -v strip >/dev/null 2>&1 ||
    ! command -v readelf >/dev/null 2>&1; then
    warn "objcopy, strip or readelf not found (package binutils): installing the binary with its debug info"
elif grep -q '[[:space:]]\.debug_info[[:space:]]' <<<"$(readelf -S --wide "$tmp/s3mount")"; then
    old_debug_file=$(debug_file_for "$(build_id "$bin_dir/s3mount")")
    debug_file=$(debug_file_for "$(build_id "$tmp/s3mount")")
    objcopy --only-keep-debug "$tmp/s3mount" "$tmp/s3mount.debug"
    strip --strip-debug --strip-unneeded "$tmp/s3mount"
    # Named after the file next to the binary; by build id, gdb and Rust look there first.
    objcopy --add-gnu-debuglink="$tmp/s3mount.debug" "$tmp/s3mount"
fi

say "installing $bin_dir/s3mount ($(($(stat -c %s "$tmp/s3mount") >> 20)) MiB)"
install -D -m 0755 "$tmp/s3mount" "$bin_dir/s3mount"
if [ -n "$debug_file" ]; then
    say "installing its debug info: $destdir$debug_file ($(($(stat -c %s "$tmp/s3mount.debug") >> 20)) MiB)"
    install -D -m 0644 "$tmp/s3mount.debug" "$destdir$debug_file"
    # The debug info of the binary just replaced, by build id, is of no use any more.
    case $old_debug_file in
    "$debug_file" | "$prefix/bin/.debug/s3mount.debug") ;;
    *) rm -f -- "$destdir$old_debug_file" ;;
    esac
fi
say "installing the man page and shell completions"
"$binary" --generate-man "$tmp" >/dev/null
install -D -m 0644 "$tmp/s3mount.1" "$man_dir/s3mount.1"
"$binary" --generate-completions bash >"$tmp/s3mount.bash"
"$binary" --generate-completions zsh >"$tmp/_s3mount"
"$binary" --generate-completions fish >"$tmp/s3mount.fish"
install -D -m 0644 "$tmp/s3mount.bash" "$share/bash-completion/completions/s3mount"
install -D -m 0644 "$tmp/_s3mount" "$share/zsh/site-functions/_s3mount"
install -D -m 0644 "$tmp/s3mount.fish" "$share/fish/vendor_completions.d/s3mount.fish"

if [ $systemd -eq 1 ]; then
    unit_dir=$destdir/etc/systemd/system
    say "installing $unit_dir/s3mount@.service"
    mkdir -p "$unit_dir" "$destdir/etc/s3mount"
    sed "s|/usr/local/bin/s3mount|$prefix/bin/s3mount|g" "$root/packaging/systemd/s3mount@.service" \
        >"$tmp/s3mount@.service"
    install -m 0644 "$tmp/s3mount@.service" "$unit_dir/s3mount@.service"
    chmod 0700 "$destdir/etc/s3mount"
    if [ -z "$destdir" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
fi

# What s3mount needs at run time.
command -v fusermount3 >/dev/null 2>&1 ||
    warn "fusermount3 not found: install FUSE 3 (Debian/Ubuntu: apt-get install fuse3; Fedora: dnf install fuse3)"
[ -e /dev/fuse ] || warn "/dev/fuse does not exist: load the fuse module (modprobe fuse)"
if ! command -v mount.fuse3 >/dev/null 2>&1 && [ ! -x /sbin/mount.fuse3 ] && [ ! -x /usr/sbin/mount.fuse3 ]; then
    warn "mount.fuse3 not found: mount -t fuse.s3mount and /etc/fstab need it (package fuse3)"
fi
mount_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin # what mount(8) gives helpers
case ":$mount_path:" in
*":$prefix/bin:"*) ;;
*) [ -n "$destdir" ] ||
    warn "$prefix/bin is not in mount(8)'s PATH: for mount -t fuse.s3mount, also run: ln -s $prefix/bin/s3mount /usr/local/bin/s3mount" ;;
esac
if [ "$(id -u)" -ne 0 ] && ! grep -qs '^[[:space:]]*user_allow_other' /etc/fuse.conf; then
    warn "to use --allow-other as a normal user, add user_allow_other to /etc/fuse.conf"
fi
say "done: $("$bin_dir/s3mount" --version 2>/dev/null || echo s3mount)"
