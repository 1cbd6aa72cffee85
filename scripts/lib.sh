# shellcheck shell=bash
# Shared shell code for s3mount's scripts (sourced by scripts/test.sh, scripts/demo.sh).
#
#   s3m_aws_env            hermetic AWS environment (no metadata service, static test credentials)
#   s3m_ensure_apt_deps    fuse3 attr acl rsync s3fs groff-base (apt-get update only when something
#                          is missing)
#   s3m_apt_get ARGS       apt-get as root, waiting (and saying so) while another apt or dpkg
#                          holds the package manager's locks (S3M_APT_LOCK_TIMEOUT, default 900 s)
#   s3m_ensure_moto        Python venv with moto[server]==$S3M_MOTO_VERSION in the deps dir
#   s3m_ensure_s3rver      npm s3rver@$S3M_S3RVER_VERSION in the deps dir
#   s3m_free_port          print a free TCP port on 127.0.0.1
#   s3m_start_moto PORT LOG  start moto_server on 127.0.0.1:PORT, wait until it answers; sets S3M_MOTO_PID
#   s3m_stop_pid PID [SECS]  SIGTERM, then SIGKILL after SECS (default 5)
#   s3m_wait_mounted DIR PID [SECS]  wait until DIR is a fuse.s3mount mount (fails if PID exits)
#   s3m_unmount DIR        fusermount3 -u DIR, falling back to umount -l DIR
#
# Installed things live in $S3MOUNT_DEPS_DIR (default ~/.cache/s3mount-deps), which survives
# between runs on the same machine; every ensure_* is idempotent and quick when already done.

# shellcheck disable=SC2034 # used by the scripts that source this file
S3M_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
S3MOUNT_DEPS_DIR=${S3MOUNT_DEPS_DIR:-${HOME:-/root}/.cache/s3mount-deps}
S3M_MOTO_VERSION=5.2.5
S3M_S3RVER_VERSION=3.7.1
S3M_VENV=$S3MOUNT_DEPS_DIR/venv
S3M_MOTO_SERVER=$S3M_VENV/bin/moto_server
S3M_PYTHON=$S3M_VENV/bin/python
S3M_S3RVER_DIR=$S3MOUNT_DEPS_DIR/s3rver
export S3MOUNT_DEPS_DIR

s3m_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
s3m_warn() { printf 'warning: %s\n' "$*" >&2; }
s3m_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Every script and test talks only to servers on 127.0.0.1 with fixed test credentials, and must
# never reach for the instance metadata service (169.254.169.254).
s3m_aws_env() {
    export AWS_EC2_METADATA_DISABLED=true
    export AWS_ACCESS_KEY_ID=test
    export AWS_SECRET_ACCESS_KEY=test
    export AWS_REGION=us-east-1
    export AWS_DEFAULT_REGION=us-east-1
    # Nothing from a developer's own AWS setup may leak in.
    unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
        AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE \
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI
    export AWS_CONFIG_FILE=/dev/null
    export AWS_SHARED_CREDENTIALS_FILE=/dev/null
    # Plain-http endpoints: a CA bundle is useless there and trips some clients.
    unset AWS_CA_BUNDLE
    # Loopback traffic must never go through a proxy.
    export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
    export no_proxy="$NO_PROXY"
}

# Serialise installs between concurrent runs (test.sh and demo.sh at once, say).
s3m_with_lock() {
    mkdir -p "$S3MOUNT_DEPS_DIR"
    (
        flock -w 900 9 || s3m_die "timed out waiting for $S3MOUNT_DEPS_DIR/.lock"
        "$@"
    ) 9>"$S3MOUNT_DEPS_DIR/.lock"
}

# How long to wait for another package manager (apt-get, dpkg, unattended-upgrades on a fresh
# machine) to release apt's and dpkg's locks, in seconds.
S3M_APT_LOCK_TIMEOUT=${S3M_APT_LOCK_TIMEOUT:-900}
S3M_APT_LOCKS=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock
    /var/cache/apt/archives/lock)

# Prints "LOCK is held by process PID (COMMAND)" for the first of apt's and dpkg's lock files
# that a process holds; returns 1 when none is held. apt and dpkg take fcntl (POSIX) locks, not
# flock(2) ones, so flock(1) cannot see them; /proc/locks lists them by inode, without root.
s3m_apt_lock_holder() {
    local lock inode pid
    for lock in "${S3M_APT_LOCKS[@]}"; do
        inode=$(stat -c %i "$lock" 2>/dev/null) || continue
        # "1: POSIX  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF"; waiters have "->" after "1:"
        pid=$(awk -v inode="$inode" '$2 != "->" && $2 != "FLOCK" {
                  n = split($6, dev, ":"); if (dev[n] == inode) { print $5; exit } }' \
            /proc/locks 2>/dev/null) || true
        if [ -n "$pid" ]; then
            printf '%s is held by process %s (%s)\n' "$lock" "$pid" \
                "$(cat "/proc/$pid/comm" 2>/dev/null || echo unknown)"
            return 0
        fi
    done
    return 1
}

# Waits while another package manager holds apt's or dpkg's locks (at most
# S3M_APT_LOCK_TIMEOUT seconds), saying so.
s3m_wait_apt_locks() {
    local holder waited=0
    holder=$(s3m_apt_lock_holder) || return 0
    s3m_log "waiting for another package manager to finish: $holder (up to ${S3M_APT_LOCK_TIMEOUT}s)"
    while holder=$(s3m_apt_lock_holder); do
        [ "$waited" -lt "$S3M_APT_LOCK_TIMEOUT" ] ||
            s3m_die "gave up after ${waited}s: $holder (set S3M_APT_LOCK_TIMEOUT to wait longer)"
        sleep 1
        waited=$((waited + 1))
    done
    s3m_log "the package manager is done (waited ${waited}s)"
}

# apt-get ARGS as root, once no other package manager holds the locks. apt itself waits for the
# dpkg lock (DPkg::Lock::Timeout), but `apt-get update` fails at once on a held lists lock, so a
# run that fails while some lock is held (taken in the meantime) waits and tries again.
s3m_apt_get() {
    local sudo= attempt rc=0
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || s3m_die "need root (or sudo) to run apt-get $*"
        sudo=sudo
    fi
    for attempt in 1 2 3; do
        s3m_wait_apt_locks
        rc=0
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$S3M_APT_LOCK_TIMEOUT" \
            "$@" </dev/null || rc=$?
        if [ $rc -eq 0 ] || ! s3m_apt_lock_holder >/dev/null; then
            return $rc
        fi
        s3m_warn "apt-get $1 failed while another package manager held a lock (attempt $attempt)"
    done
    return $rc
}

S3M_APT_UPDATED=
s3m_apt_install() {
    if [ -z "$S3M_APT_UPDATED" ]; then
        s3m_log "apt-get update"
        s3m_apt_get update -qq
        S3M_APT_UPDATED=1
    fi
    s3m_log "apt-get install $*"
    s3m_apt_get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@"
}

# Debian packages the tests and the demo need: fusermount3 (fuse3), getfattr (attr), rsync,
# setfacl (acl), s3fs (the interoperability tests) and groff (the man page test renders it).
s3m_ensure_apt_deps() {
    local missing=()
    command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
    command -v getfattr >/dev/null 2>&1 || missing+=(attr)
    command -v setfacl >/dev/null 2>&1 || missing+=(acl)
    command -v rsync >/dev/null 2>&1 || missing+=(rsync)
    command -v flock >/dev/null 2>&1 || missing+=(util-linux)
    # s3fs 1.90: the interoperability tests mount the same bucket with both tools.
    command -v s3fs >/dev/null 2>&1 || missing+=(s3fs)
    command -v groff >/dev/null 2>&1 || missing+=(groff-base)
    if [ ${#missing[@]} -gt 0 ]; then
        s3m_apt_install "${missing[@]}"
    fi
    [ -e /dev/fuse ] || s3m_warn "/dev/fuse does not exist: FUSE mounts will fail"
}

s3m_moto_ok() {
    [ -x "$S3M_MOTO_SERVER" ] && [ -f "$S3M_VENV/.s3mount-moto-$S3M_MOTO_VERSION" ] &&
        [ "$("$S3M_PYTHON" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" = "$S3M_MOTO_VERSION" ]
}

s3m_install_moto_locked() {
    s3m_moto_ok && return 0
    s3m_log "installing moto[server]==$S3M_MOTO_VERSION into $S3M_VENV (about a minute)"
    rm -rf "$S3M_VENV"
    local py
    py=$(command -v python3 || true)
    if [ -z "$py" ] || ! "$py" -m venv "$S3M_VENV" >/dev/null 2>&1; then
        # Debian's python3 needs python3-venv for ensurepip.
        rm -rf "$S3M_VENV"
        s3m_apt_install python3 python3-venv
        /usr/bin/python3 -m venv "$S3M_VENV"
    fi
    "$S3M_PYTHON" -m pip install --quiet --disable-pip-version-check "moto[server]==$S3M_MOTO_VERSION" </dev/null
    touch "$S3M_VENV/.s3mount-moto-$S3M_MOTO_VERSION"
    s3m_moto_ok || s3m_die "moto $S3M_MOTO_VERSION did not install correctly into $S3M_VENV"
}

s3m_ensure_moto() {
    if ! s3m_moto_ok; then
        s3m_with_lock s3m_install_moto_locked
    fi
    export S3MOUNT_MOTO_SERVER=$S3M_MOTO_SERVER
}

s3m_s3rver_ok() {
    [ -f "$S3M_S3RVER_DIR/node_modules/s3rver/package.json" ] &&
        grep -q "\"version\": \"$S3M_S3RVER_VERSION\"" "$S3M_S3RVER_DIR/node_modules/s3rver/package.json"
}

s3m_install_s3rver_locked() {
    s3m_s3rver_ok && return 0
    command -v npm >/dev/null 2>&1 || s3m_apt_install nodejs npm
    s3m_log "installing s3rver@$S3M_S3RVER_VERSION into $S3M_S3RVER_DIR"
    mkdir -p "$S3M_S3RVER_DIR"
    (cd "$S3M_S3RVER_DIR" && npm install --silent --no-audit --no-fund --no-save "s3rver@$S3M_S3RVER_VERSION" </dev/null)
    s3m_s3rver_ok || s3m_die "s3rver $S3M_S3RVER_VERSION did not install correctly into $S3M_S3RVER_DIR"
}

# Start with: NODE_OPTIONS=--openssl-legacy-provider node "$S3MOUNT_S3RVER" -d DIR -a 127.0.0.1 -p PORT --silent
s3m_ensure_s3rver() {
    if ! s3m_s3rver_ok; then
        s3m_with_lock s3m_install_s3rver_locked
    fi
    export S3MOUNT_S3RVER=$S3M_S3RVER_DIR/node_modules/s3rver/bin/s3rver.js
}

s3m_free_port() {
    local py=python3
    [ -x "$S3M_PYTHON" ] && py=$S3M_PYTHON
    "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# True once something accepts TCP connections on 127.0.0.1:PORT.
s3m_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

S3M_MOTO_PID=
s3m_start_moto() {
    local port=$1 log=$2
    "$S3M_MOTO_SERVER" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
    S3M_MOTO_PID=$!
    for _ in $(seq 1 300); do
        if ! kill -0 "$S3M_MOTO_PID" 2>/dev/null; then
            cat "$log" >&2
            s3m_die "moto_server exited during startup (log above)"
        fi
        if s3m_port_open "$port"; then
            return 0
        fi
        sleep 0.1
    done
    cat "$log" >&2
    s3m_die "moto_server did not answer on 127.0.0.1:$port within 30 s"
}

s3m_stop_pid() {
    local pid=$1 secs=${2:-5}
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Mount point column (field 5) of /proc/self/mountinfo, octal escapes as the kernel writes them.
s3m_mountinfo_escape() {
    local s=$1
    s=${s//\\/\\134}
    s=${s// /\\040}
    s=${s//$'\t'/\\011}
    s=${s//$'\n'/\\012}
    printf '%s' "$s"
}

s3m_is_mounted() {
    local want
    want=$(s3m_mountinfo_escape "$1")
    awk -v want="$want" '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
                           if ($5 == want && $(i + 1) ~ /^fuse/) found = 1 }
                         END { exit !found }' /proc/self/mountinfo
}

s3m_wait_mounted() {
    local dir=$1 pid=$2 secs=${3:-20}
    for _ in $(seq 1 $((secs * 10))); do
        s3m_is_mounted "$dir" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

s3m_unmount() {
    local dir=$1
    s3m_is_mounted "$dir" || return 0
    fusermount3 -u "$dir" 2>/dev/null || fusermount3 -uz "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null || true
}
