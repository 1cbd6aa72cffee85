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

say "installing $bin_dir/s3mount"
install -D -m 0755 "$binary" "$bin_dir/s3mount"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
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
