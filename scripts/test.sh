#!/usr/bin/env bash
# Run s3mount's whole check suite: cargo fmt --check, cargo clippy -D warnings, cargo test.
#
#   ./scripts/test.sh [--no-lint] [CARGO TEST ARGS...]
#
# Installs what is missing first (Debian: fuse3 attr rsync; a venv with moto[server]==5.2.5 in
# ${S3MOUNT_DEPS_DIR:-~/.cache/s3mount-deps}; npm s3rver only if a test uses it), exports
# S3MOUNT_MOTO_SERVER for the integration tests (which start their own servers), and runs every
# step even after a failure; exits non-zero if any step failed. A last step fails if the tests
# left staging files (s3mount-staged-*) in the temp dir or the default staging directory.
#
#   --no-lint              skip cargo fmt and clippy (quick iterations)
#   CARGO TEST ARGS        passed to cargo test, e.g. `--test smoke` or `-- --nocapture`
#   RUST_TEST_THREADS=N    parallel tests within a test binary (default 4: most integration
#                          tests wait on servers and timeouts, not on the CPU)
#   S3MOUNT_DEPS_DIR=DIR   where the venv (and s3rver) live
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$S3M_ROOT"

lint=1
if [ "${1:-}" = "--no-lint" ]; then
    lint=0
    shift
fi
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

s3m_aws_env
# The integration tests mostly wait (on moto, on timeouts they provoke): four at a time halve
# the suite's wall time on two cores (faults: 107 s -> 50 s) without starving the mounts.
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-4}
command -v cargo >/dev/null 2>&1 || s3m_die "cargo not found (install the Rust toolchain)"

s3m_log "dependencies (cache: $S3MOUNT_DEPS_DIR)"
s3m_ensure_apt_deps
s3m_ensure_moto
if [ -n "${S3MOUNT_WITH_S3RVER:-}" ] || grep -rqs 'S3MOUNT_S3RVER' tests/; then
    s3m_ensure_s3rver
fi
printf '    moto_server: %s (moto %s)\n' "$S3MOUNT_MOTO_SERVER" "$S3M_MOTO_VERSION" >&2
[ -z "${S3MOUNT_S3RVER:-}" ] || printf '    s3rver: %s\n' "$S3MOUNT_S3RVER" >&2

# FUSE mounts the tests left behind: the fixtures mount under .../s3mount-test-XXXX/mnt.
# Only dead ones (daemon gone: "Transport endpoint is not connected") are cleared, so a test run
# going on in parallel is left alone.
clear_dead_test_mounts() {
    local when=$1 mp
    while IFS= read -r mp; do
        [ -n "$mp" ] || continue
        mp=$(printf '%b' "${mp//\\/\\0}") # mountinfo's octal escapes: \040 -> \0040 -> " "
        if ! stat "$mp" >/dev/null 2>&1; then
            s3m_warn "$when: clearing dead FUSE mount $mp"
            fusermount3 -uz "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
            # its .../s3mount-test-XXXX directory (logs) can go once nothing is mounted there
            if ! s3m_is_mounted "$mp" && [ -d "$(dirname "$mp")" ]; then
                rm -rf -- "$(dirname "$mp")"
            fi
        elif [ "$when" = "after the tests" ]; then
            s3m_warn "$when: $mp is still mounted (a test leaked a mount, or another run is going on)"
        fi
    done < <(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
                    if ($(i + 1) ~ /^fuse/ && $5 ~ /\/s3mount-test-[^\/]*\/mnt$/) print $5 }' /proc/self/mountinfo)
}
clear_dead_test_mounts "before the tests"
trap 'clear_dead_test_mounts "after the tests"' EXIT

# Staging files and kept failed uploads the tests must not leave behind: every test stages in
# a directory of its own, removed afterwards. Listed before the run, so that files another run
# left earlier are not blamed on this one.
staging_leftovers() {
    local state=/var/lib/s3mount
    [ "$(id -u)" -eq 0 ] || state=${XDG_STATE_HOME:-$HOME/.local/state}/s3mount
    # (a directory that does not exist holds nothing: find's failure is not one of ours)
    {
        find "${TMPDIR:-/tmp}" "$state" -maxdepth 1 -name 's3mount-staged-*' 2>/dev/null || true
        find "$state/failed-uploads" -mindepth 1 -maxdepth 1 2>/dev/null || true
    } | sort
}
staged_before=$(staging_leftovers)
check_no_staging_leftovers() {
    local left
    left=$(comm -13 <(printf '%s\n' "$staged_before") <(staging_leftovers) | sed '/^$/d')
    if [ -n "$left" ]; then
        printf 'the tests left staging files behind:\n%s\n' "$left" >&2
        return 1
    fi
}

failed=()
run_step() {
    local name=$1 start rc
    shift
    s3m_log "$name: $*"
    start=$SECONDS
    set +e
    "$@"
    rc=$?
    set -e
    if [ $rc -eq 0 ]; then
        printf '    %s: ok (%ds)\n' "$name" $((SECONDS - start)) >&2
    else
        printf '    %s: FAILED with exit code %d (%ds)\n' "$name" $rc $((SECONDS - start)) >&2
        failed+=("$name")
    fi
}

if [ $lint -eq 1 ]; then
    run_step fmt cargo fmt --all -- --check
    run_step clippy cargo clippy --all-targets -- -D warnings
fi
run_step test cargo test --no-fail-fast "$@"
run_step leftovers check_no_staging_leftovers

if [ ${#failed[@]} -gt 0 ]; then
    s3m_log "test.sh: FAILED steps: ${failed[*]}"
    exit 1
fi
s3m_log "test.sh: all steps succeeded"
