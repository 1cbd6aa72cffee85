#!/usr/bin/env bash
# Benchmark s3mount side by side with the raw server (curl / boto3 / the aws CLI) and with s3fs,
# in one run, against a local s3rver on 127.0.0.1. The harness is the Python package
# scripts/bench/ (one module per workload); this launcher installs what is missing, builds
# s3mount and runs `python -m bench`.
#
#   ./scripts/bench.sh [--quick] [--no-build]
#
# Output: the ratios table (and the requests and listing-growth tables) on stdout, the same
# report in docs/bench-results.md and a chart in docs/bench.png (both rewritten every run).
#
# Installs: Debian packages fuse3 s3fs fio curl attr (apt-get update only when one is missing);
# npm s3rver@3.7.1 (scripts/lib.sh); a venv with boto3, matplotlib, ruff and pytest in
# ${S3MOUNT_DEPS_DIR:-~/.cache/s3mount-deps}/bench-venv.
#
#   --quick                 small sizes: 256 MiB object, 2,000 list objects, 200 small files,
#                           1 run, 5 s fio runs, 16 x 32 MiB readers, listings of 500/2,000/5,000,
#                           3 time-to-first-byte runs (about 5 minutes)
#   --no-build              use the existing release binary (BENCH_S3MOUNT_BIN or the target dir)
#   BENCH_BASELINE_BIN=PATH a second s3mount binary, run interleaved with the one under test
#                           (run by run): an extra "baseline" column, for a before/after from one
#                           run; s3mount/baseline is the median of the per-run ratios
#   BENCH_BASELINE_DESC=T   how the report describes the baseline binary (default: its path)
#   BENCH_S3MOUNT_BIN=PATH  benchmark this binary instead of building one
#   BENCH_TARGET_DIR=DIR    CARGO_TARGET_DIR for the release build (default <repo>/target)
#   BENCH_SIZE_MIB=N        size of the sequential-read object and of the written file (default 1024)
#   BENCH_LIST_FILES=N      objects in the `ls -l` directory (default 10000; half of them carry
#                           s3fs's mode/uid/gid/mtime headers), listed three ways: fresh mount,
#                           after the metadata TTL (2 s), --listing-attributes
#   BENCH_LIST_SIZES="N.."  directory sizes of the listing-growth workload (default
#                           "1000 10000 50000"; a size above 10,000 is listed once per client
#                           and without s3fs, as s3rver's own LIST grows quadratically)
#   BENCH_SMALL_FILES=N     4 KiB files for the `cat` and create workloads (default 1000)
#   BENCH_MULTI_MIB=N       size of each of the 16 objects read at once (default 256)
#   BENCH_TTFB_RUNS=N       runs of the time-to-first-byte measurement (default 5)
#   BENCH_LATENCY_MS=N      latency the proxy adds to each request in the second
#                           time-to-first-byte row (default 20, about a distant S3 region)
#   BENCH_RUNS=N            runs per measurement, the median is shown (default 3)
#   BENCH_FIO_SECONDS=N     length of each fio run (default 20)
#   BENCH_FIO_RUNS=N        runs per fio measurement (default 1: each run is already time-based)
#   BENCH_TIMEOUT=S         give up on one measured command after S seconds (default 300)
#   BENCH_WORKLOADS="..."   run only these workloads, in this order (default: seq fio listing
#                           smallcat write create ttfb multi growth diskcache remount_listing
#                           servercopy append million)
#   BENCH_WORK_DIR=DIR      where the temporary data goes (default $TMPDIR or /tmp)
#   BENCH_RESULTS=FILE      the results file (default docs/bench-results.md; a relative path
#                           is taken from the repository root)
#   BENCH_CHART=FILE        the chart (default docs/bench.png)
#   BENCH_KEEP_LOGS=1       keep the logs directory even when every cell was measured
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$S3M_ROOT"

build=1
args=()
for a in "$@"; do
    case $a in
        --quick) args+=("$a") ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) s3m_die "unknown argument: $a (see --help)" ;;
    esac
done

# Only 127.0.0.1, explicit credentials and region, no metadata service.
s3m_aws_env
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
# s3rver stores aws-chunked upload framing raw: only send checksums when an API requires one.
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required

missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v s3fs >/dev/null 2>&1 || missing+=(s3fs)
command -v fio >/dev/null 2>&1 || missing+=(fio)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v getfattr >/dev/null 2>&1 || missing+=(attr)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    s3m_apt_install "${missing[@]}" || s3m_die "could not install ${missing[*]}"
fi
[ -e /dev/fuse ] || s3m_die "/dev/fuse does not exist: no FUSE here"
s3m_ensure_s3rver

# The harness's venv; the marker names the requirements, so a change reinstalls.
bench_venv=$S3MOUNT_DEPS_DIR/bench-venv
bench_reqs="boto3==1.44.18 matplotlib==3.11.2 ruff==0.17.6 pytest==9.2.0"
bench_marker=$bench_venv/.s3mount-bench-$(printf '%s' "$bench_reqs" | cksum | cut -d' ' -f1)
install_bench_venv() {
    [ -f "$bench_marker" ] && return 0
    s3m_log "installing $bench_reqs into $bench_venv"
    rm -rf "$bench_venv"
    python3 -m venv "$bench_venv" || { s3m_apt_install python3-venv && python3 -m venv "$bench_venv"; }
    # shellcheck disable=SC2086 # one word per requirement
    "$bench_venv/bin/pip" install --quiet --disable-pip-version-check $bench_reqs </dev/null
    touch "$bench_marker"
}
[ -f "$bench_marker" ] || s3m_with_lock install_bench_venv

if [ -z "${BENCH_S3MOUNT_BIN:-}" ]; then
    target_dir=${BENCH_TARGET_DIR:-$S3M_ROOT/target}
    export BENCH_S3MOUNT_BIN=$target_dir/release/s3mount
    if [ $build -eq 1 ]; then
        command -v cargo >/dev/null 2>&1 || s3m_die "cargo not found (install the Rust toolchain)"
        s3m_log "building s3mount (release, CARGO_TARGET_DIR=$target_dir)"
        CARGO_TARGET_DIR=$target_dir cargo build --release --bin s3mount || s3m_die "release build failed"
    fi
    export BENCH_S3MOUNT_DESC="${BENCH_S3MOUNT_DESC:-release build of $S3M_ROOT at git $(git describe --always --dirty 2>/dev/null || echo unknown)}"
fi
[ -x "$BENCH_S3MOUNT_BIN" ] || s3m_die "no s3mount binary at $BENCH_S3MOUNT_BIN"
if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
    [ -x "$BENCH_BASELINE_BIN" ] || s3m_die "no baseline binary at $BENCH_BASELINE_BIN"
fi
export BENCH_S3RVER_MODULE=$S3M_S3RVER_DIR/node_modules/s3rver

cd "$S3M_ROOT/scripts"
exec "$bench_venv/bin/python" -m bench "${args[@]}"
