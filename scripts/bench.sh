#!/usr/bin/env bash
# Benchmark s3mount side by side with the raw server (curl / boto3) and with s3fs, in one run,
# against a local s3rver on 127.0.0.1, and print one table with ratios.
#
#   ./scripts/bench.sh [--quick] [--no-build]
#
# Installs what is missing (Debian: fuse3 s3fs fio curl attr; npm s3rver@3.7.1 in
# ${S3MOUNT_DEPS_DIR:-~/.cache/s3mount-deps}), builds s3mount in release mode, starts s3rver on a
# free port, seeds a bucket through the S3 API (never through a mount), runs the workloads and
# cleans everything up (mounts, servers, temporary data), also on failure or Ctrl-C.
# It only measures: nothing is asserted. A part that fails shows "n/a" and the run goes on.
#
# Workloads: (1) sequential read of a random object, cold and warm; (2) fio random 256 KiB
# reads; (3) `ls -l` of a directory of many objects vs the bare paginated LIST calls;
# (4) `cat` of many 4 KiB files vs a keep-alive curl loop; (5) sequential write of the object's
# size into the mount (`dd conv=fsync`) vs `aws s3 cp` vs s3fs, with s3mount's peak RSS and a
# byte check of what was uploaded; (6) creating many 4 KiB files (`cp -r`) vs s3fs, and vs
# sequential PutObject calls; (7) time to the first byte of the object on a fresh mount vs one
# small ranged GET (bytes=0-1), on loopback and through a proxy that adds latency; (8) 16 and 4 large files read at once (aggregate MiB/s, peak RSS) vs
# parallel curl GETs; (9) `ls -l` at several directory sizes vs the bare LIST calls, to show
# how it grows. The server counts the requests of each client (a request log kept by a small
# wrapper around s3rver).
#
#   --quick                 small sizes: 256 MiB object, 2,000 list objects, 200 small files,
#                           1 run, 5 s fio runs, 16 x 32 MiB readers, listings of 500/2,000/5,000,
#                           3 time-to-first-byte runs (about 3 minutes)
#   --no-build              use the existing release binary (BENCH_S3MOUNT_BIN or the target dir)
#   BENCH_SIZE_MIB=N        size of the sequential-read object and of the written file (default 1024)
#   BENCH_LIST_FILES=N      objects in the `ls -l` directory (default 10000)
#   BENCH_LIST_SIZES="N.."  directory sizes of the listing-growth workload (default
#                           "1000 10000 50000"; a size above 10,000 is measured once per client
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
#   BENCH_TARGET_DIR=DIR    CARGO_TARGET_DIR for the release build (default <repo>/target)
#   BENCH_S3MOUNT_BIN=PATH  benchmark this binary instead of building one
#   BENCH_WORK_DIR=DIR      where the temporary data goes (default $TMPDIR or /tmp)
#   BENCH_OUT=FILE          also write the report (machine info and tables) to FILE
#   BENCH_KEEP_LOGS=1       keep the logs directory even when every cell was measured
set -uo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$S3M_ROOT" || exit 1

quick=0
build=1
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) s3m_die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done

if [ $quick -eq 1 ]; then
    size_mib=${BENCH_SIZE_MIB:-256}
    list_files=${BENCH_LIST_FILES:-2000}
    small_files=${BENCH_SMALL_FILES:-200}
    runs=${BENCH_RUNS:-1}
    fio_secs=${BENCH_FIO_SECONDS:-5}
    fio_runs=${BENCH_FIO_RUNS:-1}
    multi_mib=${BENCH_MULTI_MIB:-32}
    ttfb_runs=${BENCH_TTFB_RUNS:-3}
    list_sizes=${BENCH_LIST_SIZES:-500 $list_files 5000}
else
    size_mib=${BENCH_SIZE_MIB:-1024}
    list_files=${BENCH_LIST_FILES:-10000}
    small_files=${BENCH_SMALL_FILES:-1000}
    runs=${BENCH_RUNS:-3}
    fio_secs=${BENCH_FIO_SECONDS:-20}
    fio_runs=${BENCH_FIO_RUNS:-1}
    multi_mib=${BENCH_MULTI_MIB:-256}
    ttfb_runs=${BENCH_TTFB_RUNS:-5}
    list_sizes=${BENCH_LIST_SIZES:-1000 $list_files 50000}
fi
cmd_timeout=${BENCH_TIMEOUT:-300}
latency_ms=${BENCH_LATENCY_MS:-20}
for v in size_mib list_files small_files runs fio_secs fio_runs cmd_timeout multi_mib ttfb_runs latency_ms; do
    case ${!v} in ''|*[!0-9]*|0) s3m_die "$v must be a positive whole number (got '${!v}')" ;; esac
done
for v in $list_sizes; do
    case $v in ''|*[!0-9]*|0) s3m_die "BENCH_LIST_SIZES must hold positive whole numbers (got '$list_sizes')" ;; esac
done
multi_bytes=$((multi_mib * 1024 * 1024))
# Directory sizes above this are listed once per client (s3rver's LIST is quadratic in the size).
list_large=10000
size_bytes=$((size_mib * 1024 * 1024))
bucket=s3mount-bench
# Large enough to hold the whole object (s3mount's warm-read variant).
big_cache_mib=$((size_mib + size_mib / 8 + 16))

bench_start=$SECONDS
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
loads=()
log() {
    local l
    l=$(cut -d' ' -f1 /proc/loadavg)
    loads+=("$l")
    printf '\033[1m==> [%4ds] (load %s) %s\033[0m\n' $((SECONDS - bench_start)) "$l" "$*" >&2
}
note() { printf '    %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# Environment: only 127.0.0.1, explicit credentials and region, no metadata service.
s3m_aws_env
export AWS_ACCESS_KEY_ID=S3RVER
export AWS_SECRET_ACCESS_KEY=S3RVER
# s3rver stores aws-chunked upload framing raw: only send checksums when an API requires one.
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required
export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
unset AWS_CA_BUNDLE

# ---------------------------------------------------------------------------------------------
# Dependencies
log "dependencies (cache: $S3MOUNT_DEPS_DIR)"
missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v s3fs >/dev/null 2>&1 || missing+=(s3fs)
command -v fio >/dev/null 2>&1 || missing+=(fio)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v getfattr >/dev/null 2>&1 || missing+=(attr)
command -v flock >/dev/null 2>&1 || missing+=(util-linux)
command -v timeout >/dev/null 2>&1 || missing+=(coreutils)
if [ ${#missing[@]} -gt 0 ]; then
    s3m_apt_install "${missing[@]}" || s3m_die "could not install ${missing[*]}"
fi
[ -e /dev/fuse ] || s3m_die "/dev/fuse does not exist: no FUSE here"
s3m_ensure_s3rver
s3rver_module=$S3M_S3RVER_DIR/node_modules/s3rver

# Python with boto3 (preinstalled with python3 here; else the moto venv, which has boto3).
py=
for cand in python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import boto3' >/dev/null 2>&1; then
        py=$(command -v "$cand")
        break
    fi
done
if [ -z "$py" ]; then
    s3m_ensure_moto
    py=$S3M_PYTHON
fi

if [ -n "${BENCH_S3MOUNT_BIN:-}" ]; then
    s3mount_bin=$BENCH_S3MOUNT_BIN
else
    target_dir=${BENCH_TARGET_DIR:-$S3M_ROOT/target}
    s3mount_bin=$target_dir/release/s3mount
    if [ $build -eq 1 ]; then
        command -v cargo >/dev/null 2>&1 || s3m_die "cargo not found (install the Rust toolchain)"
        log "building s3mount (release, CARGO_TARGET_DIR=$target_dir)"
        CARGO_TARGET_DIR=$target_dir cargo build --release --bin s3mount ||
            s3m_die "release build failed"
    fi
fi
[ -x "$s3mount_bin" ] || s3m_die "no s3mount binary at $s3mount_bin"

# ---------------------------------------------------------------------------------------------
# Work directory and cleanup
work_root=${BENCH_WORK_DIR:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$work_root/s3mount-bench.XXXXXX") || s3m_die "mktemp failed"
logs=$work/logs
mkdir -p "$logs" "$work/s3rver" "$work/mnt-s3mount" "$work/mnt-s3fs"
mnt_s3m=$work/mnt-s3mount
mnt_s3fs=$work/mnt-s3fs
s3rver_pid=
s3m_pid=
s3fs_pid=
failures=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    log "cleaning up"
    if declare -F stop_s3mount >/dev/null; then
        stop_s3mount
        stop_s3fs
    fi
    if [ -n "${lat_pid:-}" ]; then
        s3m_stop_pid "$lat_pid" 5
    fi
    if [ -n "$s3rver_pid" ]; then
        s3m_stop_pid "$s3rver_pid" 5
        s3rver_pid=
    fi
    count_failures
    local keep=0
    if s3m_is_mounted "$mnt_s3m" || s3m_is_mounted "$mnt_s3fs"; then
        s3m_warn "a mount under $work is still there; run: fusermount3 -uz DIR"
        keep=1
    fi
    if [ $keep -eq 1 ]; then
        note "left $work in place (still mounted)"
    elif [ $rc -ne 0 ] || [ "$failures" -gt 0 ] || [ -n "${BENCH_KEEP_LOGS:-}" ]; then
        local saved
        saved=$(mktemp -d "$work_root/s3mount-bench-logs.XXXXXX")
        cp -r "$logs/." "$saved/" 2>/dev/null
        rm -rf "$work"
        note "logs kept in $saved"
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Helpers

# Drop the page cache (both the server's files and the mounts' cached pages).
can_drop=0
if sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
    can_drop=1
else
    s3m_warn "cannot drop the page cache here: 'cold' runs only have cold FUSE mounts"
fi
drop_caches() {
    [ $can_drop -eq 1 ] || return 0
    sync
    echo 3 >/proc/sys/vm/drop_caches
}

now() { printf '%s' "$EPOCHREALTIME"; }
elapsed_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }'; }

# timed CMD...: run CMD with a timeout; sets ELAPSED (seconds) and returns CMD's status.
ELAPSED=
timed() {
    local t0 rc
    t0=$(now)
    timeout --foreground -k 10 "$cmd_timeout" "$@"
    rc=$?
    ELAPSED=$(elapsed_since "$t0")
    [ $rc -eq 124 ] && s3m_warn "timed out after ${cmd_timeout}s: $*"
    return $rc
}

# cpu_secs PID: user+system CPU seconds the process has used so far.
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_secs() {
    awk -v t="$clk_tck" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat" 2>/dev/null || echo n/a
}
cpu_delta() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.1f", b - a }'; }

# pair_ratio A B: A / B with two decimals, or n/a.
pair_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
mibps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1048576 / s; else print "n/a" }'; }

# median VALUES...: median of the numeric values ("n/a" if none).
median() {
    local vals=() v
    for v in "$@"; do
        case $v in '' | n/a) ;; *) vals+=("$v") ;; esac
    done
    if [ ${#vals[@]} -eq 0 ]; then
        echo n/a
        return
    fi
    printf '%s\n' "${vals[@]}" | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) m = a[(NR + 1) / 2]; else m = (a[NR / 2] + a[NR / 2 + 1]) / 2
        if (m >= 100) printf "%.0f", m; else if (m >= 10) printf "%.1f", m; else printf "%#.3g", m }'
}

maxof() {
    local m=n/a v
    for v in "$@"; do
        case $v in '' | n/a) continue ;; esac
        if [ "$m" = n/a ] || [ "$v" -gt "$m" ]; then m=$v; fi
    done
    echo "$m"
}

who_name() { if [ "$1" = s3m ]; then echo s3mount; else echo "$1"; fi; }

# fail MESSAGE: a step failed (its cell shows n/a). Counted in a file: many steps run in $(...).
fail() {
    printf '%s\n' "$*" >>"$work/failures"
    s3m_warn "$*"
}
count_failures() { failures=$( (wc -l <"$work/failures") 2>/dev/null || echo 0); }

# The table: rows in order, cells keyed "ROW|col" with col in curl s3fs s3m rss unit.
declare -a ROWS=()
declare -A CELL=()
row() { # row ID UNIT LABEL
    ROWS+=("$1")
    CELL["$1|unit"]=$2
    CELL["$1|label"]=$3
}
set_cell() { CELL["$1|$2"]=$3; }

# Requests seen by the server: a second table, cells keyed "ROW|client".
declare -a REQ_ROWS=()
declare -A REQ=()
# pairs ROW CURL_FN S3M_FN: once per run, drop the caches, run CURL_FN (prints MiB/s), then at
# once S3M_FN RUN (fresh mount; sets pair_value to MiB/s). The groups of runs elsewhere put each
# client in its own minutes, so load that drifts between groups moves their ratio; a pair shares
# its minute, and the row's ratio is the median of the per-pair ratios.
pairs() {
    local rid=$1 curl_fn=$2 s3m_fn=$3 r c pc=() ps=() pq=()
    for r in $(seq 1 "$runs"); do
        drop_caches
        c=$($curl_fn)
        pair_value=n/a
        "$s3m_fn" "$r" || continue
        pc+=("$c") ps+=("$pair_value") pq+=("$(pair_ratio "$pair_value" "$c")")
    done
    note "$rid, curl then s3mount: ${pc[*]:-n/a} / ${ps[*]:-n/a} MiB/s; ratios ${pq[*]:-n/a}"
    set_cell "$rid" curl "$(median "${pc[@]}")"
    set_cell "$rid" s3m "$(median "${ps[@]}")"
    set_cell "$rid" pairratio "$(pair_ratio "$(median "${pq[@]}")" 1)"
}

req_row() {
    REQ_ROWS+=("$1")
    REQ["$1|label"]=$2
}

# ---------------------------------------------------------------------------------------------
# s3rver, wrapped so that every request is logged as "METHOD STATUS URL" (counted per workload).
cat >"$work/s3rver-logged.js" <<'EOF'
'use strict';
// s3rver with a request log: one line "METHOD STATUS URL RANGE MILLISECONDS CONTENT-LENGTH END" per
// answered request (RANGE and CONTENT-LENGTH, of the request, are "-" when absent; END is the
// wall-clock time of the answer in milliseconds, so that requests in flight can be counted).
const fs = require('fs');
const [, , modulePath, directory, port, logFile] = process.argv;
const S3rver = require(modulePath);
const fd = fs.openSync(logFile, 'a');
const server = new S3rver({ address: '127.0.0.1', port: Number(port), silent: true, directory });
server.middleware.unshift(async (ctx, next) => {
  const start = process.hrtime.bigint();
  ctx.res.once('finish', () => {
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    fs.writeSync(fd, `${ctx.method} ${ctx.res.statusCode} ${ctx.url} ${ctx.get('range') || '-'} ${ms.toFixed(2)} ${ctx.get('content-length') || '-'} ${Date.now()}\n`);
  });
  await next();
});
server.run().then(
  (addr) => console.log(`s3rver listening on ${addr.address}:${addr.port}`),
  (err) => { console.error(err); process.exit(1); },
);
const stop = () => server.close().then(() => process.exit(0), () => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
EOF

port=$(s3m_free_port)
endpoint=http://127.0.0.1:$port
reqlog=$logs/s3rver-requests.log
: >"$reqlog"
log "starting s3rver@$S3M_S3RVER_VERSION on $endpoint"
NODE_OPTIONS=--openssl-legacy-provider node "$work/s3rver-logged.js" "$s3rver_module" "$work/s3rver" \
    "$port" "$reqlog" >"$logs/s3rver.log" 2>&1 </dev/null &
s3rver_pid=$!
for _ in $(seq 1 300); do
    s3m_port_open "$port" && break
    kill -0 "$s3rver_pid" 2>/dev/null || { cat "$logs/s3rver.log" >&2; s3m_die "s3rver exited"; }
    sleep 0.1
done
s3m_port_open "$port" || s3m_die "s3rver did not answer on $endpoint"

req_mark() { sleep 0.3; wc -l <"$reqlog"; }
# req_since MARK: "N (a LIST ~x ms, b GET ~y ms, ...)" for the requests after MARK: counts and the
# server's mean time per request of each kind; for ranged GETs also their mean size, for PUTs
# the mean body size. POST is CreateMultipartUpload and CompleteMultipartUpload.
req_since() {
    sleep 0.3
    tail -n +"$(($1 + 1))" "$reqlog" | awk '
        { n++
          if ($1 == "GET" && $3 ~ /^\/[^\/?]*\/?(\?|$)/ && $3 !~ /[?&]location/) k = "LIST"
          else if ($1 == "GET" || $1 == "HEAD" || $1 == "PUT" || $1 == "POST" || $1 == "DELETE") k = $1
          else k = "other"
          cnt[k]++; ms[k] += $5
          if (k == "GET" && $4 ~ /^bytes=[0-9]+-[0-9]+$/) {
              split(substr($4, 7), r, "-"); ranged++; rbytes += r[2] - r[1] + 1 }
          if (k == "PUT" && $6 ~ /^[0-9]+$/) { puts++; pbytes += $6 } }
        END { s = sprintf("%d", n); d = ""
              split("LIST GET HEAD PUT POST DELETE other", order, " ")
              for (i = 1; i <= 7; i++) {
                  k = order[i]
                  if (!cnt[k]) continue
                  d = d sprintf(", %d %s ~%.1f ms", cnt[k], k, ms[k] / cnt[k])
                  if (k == "GET" && ranged) d = d sprintf(" (%d ranged, avg %.0f KiB)", ranged, rbytes / ranged / 1024)
                  if (k == "PUT" && puts) d = d sprintf(" (avg %.0f KiB)", pbytes / puts / 1024)
              }
              if (d != "") s = s " (" substr(d, 3) ")"
              print s }'
}

# ---------------------------------------------------------------------------------------------
# Python helper (boto3): bucket, seeding, presigning, LIST timing, random ranged GETs.
cat >"$work/s3.py" <<'EOF'
import concurrent.futures as cf
import http.client
import os
import random
import sys
import time
import urllib.parse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

EP = os.environ["BENCH_ENDPOINT"]
BUCKET = os.environ["BENCH_BUCKET"]


def client():
    return boto3.client(
        "s3", endpoint_url=EP, region_name="us-east-1",
        aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=64,
                      retries={"max_attempts": 5, "mode": "standard"}))


def presign(c, key):
    return c.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key},
                                    ExpiresIn=7 * 86400)


cmd, args = sys.argv[1], sys.argv[2:]
c = client()
if cmd == "mkbucket":
    c.create_bucket(Bucket=BUCKET)
elif cmd == "upload":  # upload PATH KEY
    mib = 1 << 20
    c.upload_file(args[0], BUCKET, args[1],
                  Config=TransferConfig(multipart_threshold=64 * mib, multipart_chunksize=64 * mib,
                                        max_concurrency=4))
elif cmd == "seed":  # seed PREFIX COUNT SIZE: COUNT objects PREFIX/fNNNNNN of SIZE random bytes
    prefix, count, size = args[0], int(args[1]), int(args[2])
    def put(i):
        c.put_object(Bucket=BUCKET, Key=f"{prefix}/f{i:06d}", Body=os.urandom(size))
    with cf.ThreadPoolExecutor(32) as ex:
        list(ex.map(put, range(count)))
    got = sum(p.get("KeyCount", 0) for p in c.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix + "/"))
    if got != count:
        sys.exit(f"seeded {count} objects under {prefix}/ but LIST shows {got}")
elif cmd == "presign":  # presign KEY
    print(presign(c, args[0]))
elif cmd == "curlcfg":  # curlcfg PREFIX COUNT: a curl config fetching every object to /dev/null
    prefix, count = args[0], int(args[1])
    for i in range(count):
        print(f'url = "{presign(c, f"{prefix}/f{i:06d}")}"\noutput = "/dev/null"')
elif cmd == "list":  # list PREFIX: seconds, pages, entries of a paginated LIST with Delimiter='/'
    prefix = args[0] + "/"
    t0 = time.perf_counter()
    pages = entries = 0
    token = None
    while True:
        kw = {"Bucket": BUCKET, "Prefix": prefix, "Delimiter": "/"}
        if token:
            kw["ContinuationToken"] = token
        r = c.list_objects_v2(**kw)
        pages += 1
        entries += len(r.get("Contents", [])) + len(r.get("CommonPrefixes", []))
        if not r.get("IsTruncated"):
            break
        token = r["NextContinuationToken"]
    print(f"{time.perf_counter() - t0:.4f} {pages} {entries}")
elif cmd == "randget":  # randget KEY SIZE BS SECONDS: one keep-alive connection, random ranges
    key, size, bs, secs = args[0], int(args[1]), int(args[2]), float(args[3])
    u = urllib.parse.urlsplit(presign(c, key))
    conn = http.client.HTTPConnection(u.hostname, u.port)
    path = u.path + "?" + u.query
    blocks = size // bs
    total = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < secs:
        off = random.randrange(blocks) * bs
        conn.request("GET", path, headers={"Range": f"bytes={off}-{off + bs - 1}"})
        r = conn.getresponse()
        body = r.read()
        if r.status != 206 or len(body) != bs:
            sys.exit(f"ranged GET: status {r.status}, {len(body)} bytes")
        total += len(body)
    el = time.perf_counter() - t0
    print(f"{total / el / 1048576:.1f}")
elif cmd == "presign_many":  # presign_many KEY...: one URL per line
    for key in args:
        print(presign(c, key))
elif cmd == "upload_files":  # upload_files PREFIX PATH...: the i-th PATH as PREFIX/oNN (NN = i)
    prefix, paths = args[0], args[1:]
    mib = 1 << 20
    cfg = TransferConfig(multipart_threshold=64 * mib, multipart_chunksize=64 * mib, max_concurrency=2)
    with cf.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: c.upload_file(paths[i], BUCKET, f"{prefix}/o{i:02d}", Config=cfg),
                    range(len(paths))))
elif cmd == "put":  # put KEY: an empty object (a directory marker when KEY ends in /)
    c.put_object(Bucket=BUCKET, Key=args[0], Body=b"")
elif cmd == "delete":  # delete KEY...
    for key in args:
        c.delete_object(Bucket=BUCKET, Key=key)
elif cmd == "putdir":  # putdir PREFIX DIR: PutObject of every file of DIR, one after another; seconds
    prefix, d = args[0], args[1]
    names = sorted(os.listdir(d))
    bodies = [open(os.path.join(d, n), "rb").read() for n in names]
    c.head_bucket(Bucket=BUCKET)  # open the connection first, as a mounted client has
    t0 = time.perf_counter()
    for n, b in zip(names, bodies):
        c.put_object(Bucket=BUCKET, Key=f"{prefix}/{n}", Body=b)
    print(f"{time.perf_counter() - t0:.4f}")
elif cmd == "verifydir":  # verifydir PREFIX DIR: every file of DIR is PREFIX/name with the same bytes
    prefix, d = args[0], args[1]
    names = sorted(os.listdir(d))
    keys = [o["Key"] for p in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
            for o in p.get("Contents", [])]
    want = {f"{prefix}/{n}" for n in names}
    extra = sorted(set(keys) - want - {prefix + "/"})
    missing = sorted(want - set(keys))
    def same(n):
        return c.get_object(Bucket=BUCKET, Key=f"{prefix}/{n}")["Body"].read() == open(os.path.join(d, n), "rb").read()
    with cf.ThreadPoolExecutor(16) as ex:
        bad = [n for n, ok in zip(names, ex.map(same, names)) if not ok] if not missing else []
    if missing or extra or bad:
        sys.exit(f"{prefix}/: {len(missing)} missing, {len(extra)} unexpected, {len(bad)} with other bytes")
else:
    sys.exit(f"unknown command {cmd}")
EOF
s3py() { BENCH_ENDPOINT=$endpoint BENCH_BUCKET=$bucket "$py" "$work/s3.py" "$@"; }

# ---------------------------------------------------------------------------------------------
# Mounts

# unmount_dir DIR PID: unmounts DIR and stops PID (the client serving it), forcing both if need be.
unmount_dir() {
    if s3m_is_mounted "$1"; then
        fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
    fi
    [ -z "$2" ] || s3m_stop_pid "$2" 10
    s3m_is_mounted "$1" && { fusermount3 -uz "$1" 2>/dev/null || umount -l "$1" 2>/dev/null; }
    return 0
}

# mounted_or_fail DIR PID WHAT LOG: waits for the mount; on failure says so (with the log's tail).
mounted_or_fail() {
    s3m_wait_mounted "$1" "$2" 30 && return 0
    fail "$3 did not mount; log: $(tail -n 3 "$4" | tr '\n' ' ')"
    return 1
}

# hwm PID: peak RSS of PID in MiB (VmHWM), "n/a" if unknown.
hwm() {
    local kb
    kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    if [ -n "$kb" ]; then echo $((kb / 1024)); else echo n/a; fi
}

# start_s3mount TAG [OPTIONS...]: fresh s3mount at $mnt_s3m; sets s3m_pid.
start_s3mount() {
    local tag=$1
    shift
    stop_s3mount
    local mlog=$logs/s3mount-$tag.log
    "$s3mount_bin" "$bucket" "$mnt_s3m" --region us-east-1 --endpoint-url "$endpoint" \
        --force-path-style --foreground "$@" >>"$mlog" 2>&1 </dev/null &
    s3m_pid=$!
    mounted_or_fail "$mnt_s3m" "$s3m_pid" "s3mount ($tag: $*)" "$mlog" || { stop_s3mount; return 1; }
}
stop_s3mount() { unmount_dir "$mnt_s3m" "$s3m_pid"; s3m_pid=; }
s3m_hwm() { hwm "$s3m_pid"; }

s3fs_passwd=$work/s3fs-passwd
printf 'S3RVER:S3RVER\n' >"$s3fs_passwd"
chmod 600 "$s3fs_passwd"

# start_s3fs TAG: fresh s3fs (no local cache) at $mnt_s3fs; sets s3fs_pid.
start_s3fs() {
    local tag=$1
    stop_s3fs
    local flog=$logs/s3fs-$tag.log
    s3fs "$bucket" "$mnt_s3fs" -f \
        -o "url=$endpoint,use_path_request_style,passwd_file=$s3fs_passwd,endpoint=us-east-1" \
        >>"$flog" 2>&1 </dev/null &
    s3fs_pid=$!
    mounted_or_fail "$mnt_s3fs" "$s3fs_pid" "s3fs ($tag)" "$flog" || { stop_s3fs; return 1; }
}
stop_s3fs() { unmount_dir "$mnt_s3fs" "$s3fs_pid"; s3fs_pid=; }
s3fs_hwm() { hwm "$s3fs_pid"; }

# read_file FILE: dd FILE to /dev/null; prints MiB/s ("n/a" on error or short read).
read_file() {
    local out bytes
    if ! timed dd if="$1" of=/dev/null bs=1M 2>"$work/dd.err"; then
        fail "dd $1 failed: $(tail -n 2 "$work/dd.err" | tr '\n' ' ')"
        echo n/a
        return
    fi
    out=$(tail -n 1 "$work/dd.err")
    bytes=${out%% bytes*}
    if [ "$bytes" != "$size_bytes" ]; then
        fail "dd $1 read $bytes bytes, expected $size_bytes"
        echo n/a
        return
    fi
    mibps "$size_bytes" "$ELAPSED"
}

# fio_read FILE: fio random 256 KiB O_DIRECT reads for $fio_secs; prints MiB/s.
fio_read() {
    local json=$work/fio.json
    if ! timed fio --name=rand --filename="$1" --rw=randread --bs=256k --direct=1 --readonly \
        --size="$size_bytes" --runtime="$fio_secs" --time_based --ioengine=psync \
        --output-format=json --output="$json" >"$work/fio.err" 2>&1; then
        fail "fio $1 failed: $(tail -n 3 "$work/fio.err" "$json" 2>/dev/null | tr '\n' ' ')"
        echo n/a
        return
    fi
    "$py" -c 'import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
if j.get("error"):
    sys.exit("fio error %s" % j["error"])
print("%.1f" % (j["read"]["bw_bytes"] / 1048576))' "$json" 2>>"$work/fio.err" || {
        fail "fio $1: unreadable result"
        echo n/a
    }
}

# ---------------------------------------------------------------------------------------------
# Seeding (through the S3 API only)
log "seeding bucket $bucket: ${size_mib} MiB object, $list_files list objects, $small_files x 4 KiB"
s3py mkbucket || s3m_die "cannot create bucket"
big_local=$work/big.bin
head -c "$size_bytes" /dev/urandom >"$big_local" || s3m_die "cannot write $big_local"
big_ok=0
if s3py upload "$big_local" big/obj; then
    big_url=$(s3py presign big/obj)
    if curl -sf "$big_url" | cmp -s - "$big_local"; then
        big_ok=1
    else
        fail "the uploaded object does not read back identical"
    fi
else
    fail "upload of the big object failed"
fi
t0=$(now)
list_ok=0
if s3py seed list "$list_files" 128; then list_ok=1; else fail "seeding $list_files list objects failed"; fi
small_ok=0
if s3py seed small "$small_files" 4096; then small_ok=1; else fail "seeding $small_files small objects failed"; fi
note "seeded $((list_files + small_files)) small objects in $(elapsed_since "$t0") s"
for i in $(seq 0 $((small_files - 1))); do printf 'f%06d\n' "$i"; done >"$work/small-names"

# Machine info
machine_info() {
    echo "# s3mount benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
    echo "- kernel: $(uname -srm); $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null)"
    if [ -n "${BENCH_S3MOUNT_BIN:-}" ]; then
        echo "- s3mount: $("$s3mount_bin" --version 2>/dev/null | head -n 1), binary $s3mount_bin (BENCH_S3MOUNT_BIN)"
    else
        echo "- s3mount: $("$s3mount_bin" --version 2>/dev/null | head -n 1), release build of $S3M_ROOT at git $(git -C "$S3M_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
    fi
    echo "- peers: $(s3fs --version 2>/dev/null | head -n 1 | sed 's/ (commit.*//'); $(curl --version | head -n 1 | cut -d' ' -f1-2); $(fio --version); boto3 $("$py" -c 'import boto3; print(boto3.__version__)')"
    echo "- server: s3rver $S3M_S3RVER_VERSION on 127.0.0.1 (node $(node --version)), data on $(df -h --output=source "$work" | tail -n 1)"
    echo "- load average (1/5/15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- sizes: object ${size_mib} MiB (read and written), ls -l of $list_files objects, cat and create of $small_files x 4 KiB, 16 x ${multi_mib} MiB read at once, listings of ${list_sizes// /, } objects; median of $runs run(s) (listings above $list_large objects: 1 run; time to first byte: $ttfb_runs runs); fio: ${fio_secs} s per run, median of $fio_runs run(s)"
    if [ $can_drop -eq 1 ]; then
        echo "- cold = page cache dropped (sync; echo 3 > /proc/sys/vm/drop_caches) and a fresh mount"
    else
        echo "- cold = fresh mount only: the page cache could NOT be dropped on this machine"
    fi
}

# ---------------------------------------------------------------------------------------------
# 1. Sequential read
log "1. sequential read of ${size_mib} MiB (runs: $runs)"
row seq1 MiB/s "seq read ${size_mib} MiB, cold, default settings — curl: 1 GET"
row seq8 MiB/s "seq read ${size_mib} MiB, cold, default settings — curl: 8 parallel ranged GETs"
row seq64 MiB/s "seq read cold, s3mount --cache-size 64 — curl: 8 ranged GETs"
row seqbig MiB/s "seq read cold, s3mount --cache-size $big_cache_mib — curl: 8 ranged GETs"
row seqpair MiB/s "seq read ${size_mib} MiB, cold, default settings, in pairs: curl 8 ranged GETs, then s3mount at once (ratio: median of the per-pair ratios)"
row warm MiB/s "seq read warm (2nd read, same mount), default settings (128 MiB cache) — curl: 8 ranged GETs, server cache warm"
row warmbig MiB/s "seq read warm (2nd read, same mount), s3mount --cache-size $big_cache_mib — curl: as above"
req_row seq "seq read ${size_mib} MiB, cold, one read (default settings)"

curl8() { # curl8: 8 parallel ranged GETs of the big object; prints MiB/s
    local part=$(((size_bytes + 7) / 8)) i s e pids=() ok=1
    local t0
    t0=$(now)
    for i in $(seq 0 7); do
        s=$((i * part))
        e=$((s + part - 1))
        [ $e -ge $size_bytes ] && e=$((size_bytes - 1))
        timeout -k 10 "$cmd_timeout" curl -sf -r "$s-$e" -o /dev/null "$big_url" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || ok=0; done
    if [ $ok -eq 1 ]; then mibps "$size_bytes" "$(elapsed_since "$t0")"; else echo n/a; fi
}

if [ $big_ok -eq 1 ]; then
    v1=() v8=() v8w=()
    for r in $(seq 1 "$runs"); do
        drop_caches
        if timed curl -sf -o /dev/null "$big_url"; then v1+=("$(mibps "$size_bytes" "$ELAPSED")"); else fail "curl GET failed"; fi
        drop_caches
        v8+=("$(curl8)")
        v8w+=("$(curl8)")
    done
    drop_caches
    k0=$(cpu_secs "$s3rver_pid")
    v=$(curl8)
    cpu_curl="s3rver $(cpu_delta "$k0" "$(cpu_secs "$s3rver_pid")") s CPU for $v MiB/s"
    note "curl 1 GET: ${v1[*]:-n/a}; curl 8-way cold: ${v8[*]}; curl 8-way warm server: ${v8w[*]}"
    c1=$(median "${v1[@]}")
    c8=$(median "${v8[@]}")
    c8w=$(median "${v8w[@]}")
    set_cell seq1 curl "$c1"
    for rid in seq8 seq64 seqbig; do set_cell "$rid" curl "$c8"; done
    for rid in warm warmbig; do set_cell "$rid" curl "$c8w"; done

    # s3fs: fresh mount per run, cold read then a second read in the same mount.
    fc=() fw=() fr=()
    for r in $(seq 1 "$runs"); do
        start_s3fs "seq-$r" || continue
        drop_caches
        fc+=("$(read_file "$mnt_s3fs/big/obj")")
        drop_caches
        fw+=("$(read_file "$mnt_s3fs/big/obj")")
        fr+=("$(s3fs_hwm)")
        if [ "$r" -eq 1 ]; then
            drop_caches
            m=$(req_mark)
            c0=$(cpu_secs "$s3fs_pid") k0=$(cpu_secs "$s3rver_pid")
            v=$(read_file "$mnt_s3fs/big/obj")
            cpu_s3fs="s3fs $(cpu_delta "$c0" "$(cpu_secs "$s3fs_pid")") s + s3rver $(cpu_delta "$k0" "$(cpu_secs "$s3rver_pid")") s CPU for $v MiB/s"
            REQ["seq|s3fs"]=$(req_since "$m")
            cmp -s "$mnt_s3fs/big/obj" "$big_local" || fail "s3fs returned different bytes for big/obj"
        fi
        stop_s3fs
    done
    note "s3fs cold: ${fc[*]:-n/a}; warm: ${fw[*]:-n/a}; peak RSS MiB: ${fr[*]:-n/a}"
    s3fs_seq_rss=$(maxof "${fr[@]}")
    for rid in seq1 seq8 seq64 seqbig; do set_cell "$rid" s3fs "$(median "${fc[@]}")"; done
    for rid in warm warmbig; do set_cell "$rid" s3fs "$(median "${fw[@]}")"; done

    # s3mount, default settings: cold then warm in the same mount; peak RSS after the cold read.
    sc=() sw=() rssc=() rssw=()
    for r in $(seq 1 "$runs"); do
        start_s3mount "seq-default-$r" || continue
        drop_caches
        sc+=("$(read_file "$mnt_s3m/big/obj")")
        rssc+=("$(s3m_hwm)")
        drop_caches
        sw+=("$(read_file "$mnt_s3m/big/obj")")
        rssw+=("$(s3m_hwm)")
        stop_s3mount
    done
    # Requests of one cold read, and a byte-for-byte check, in a separate fresh mount.
    if start_s3mount seq-check; then
        drop_caches
        m=$(req_mark)
        c0=$(cpu_secs "$s3m_pid") k0=$(cpu_secs "$s3rver_pid")
        v=$(read_file "$mnt_s3m/big/obj")
        cpu_s3m="s3mount $(cpu_delta "$c0" "$(cpu_secs "$s3m_pid")") s + s3rver $(cpu_delta "$k0" "$(cpu_secs "$s3rver_pid")") s CPU for $v MiB/s"
        REQ["seq|s3m"]=$(req_since "$m")
        drop_caches
        if cmp -s "$mnt_s3m/big/obj" "$big_local"; then
            note "s3mount data check: identical"
        else
            fail "s3mount returned different bytes for big/obj"
            s3m_data_bad=1
        fi
        stop_s3mount
    fi
    note "s3mount default cold: ${sc[*]:-n/a} (RSS ${rssc[*]:-n/a}); warm: ${sw[*]:-n/a} (RSS ${rssw[*]:-n/a})"
    for rid in seq1 seq8; do
        set_cell "$rid" s3m "$(median "${sc[@]}")"
        set_cell "$rid" rss "$(maxof "${rssc[@]}")"
    done
    set_cell warm s3m "$(median "${sw[@]}")"
    set_cell warm rss "$(maxof "${rssw[@]}")"

    # s3mount --cache-size 64 (cold only) and --cache-size big (cold, then warm from its cache).
    sc=() rssc=()
    for r in $(seq 1 "$runs"); do
        start_s3mount "seq-cache64-$r" --cache-size 64 || continue
        drop_caches
        sc+=("$(read_file "$mnt_s3m/big/obj")")
        rssc+=("$(s3m_hwm)")
        stop_s3mount
    done
    note "s3mount --cache-size 64 cold: ${sc[*]:-n/a} (RSS ${rssc[*]:-n/a})"
    set_cell seq64 s3m "$(median "${sc[@]}")"
    set_cell seq64 rss "$(maxof "${rssc[@]}")"

    sc=() sw=() rssc=() rssw=()
    for r in $(seq 1 "$runs"); do
        start_s3mount "seq-cachebig-$r" --cache-size "$big_cache_mib" || continue
        drop_caches
        sc+=("$(read_file "$mnt_s3m/big/obj")")
        rssc+=("$(s3m_hwm)")
        drop_caches
        m=$(req_mark)
        sw+=("$(read_file "$mnt_s3m/big/obj")")
        [ "$r" -eq 1 ] && warm_reqs=$(req_since "$m")
        rssw+=("$(s3m_hwm)")
        stop_s3mount
    done
    note "s3mount --cache-size $big_cache_mib cold: ${sc[*]:-n/a} (RSS ${rssc[*]:-n/a}); warm: ${sw[*]:-n/a} (RSS ${rssw[*]:-n/a}); requests of the warm read: ${warm_reqs:-n/a}"
    set_cell seqbig s3m "$(median "${sc[@]}")"
    set_cell seqbig rss "$(maxof "${rssc[@]}")"
    set_cell warmbig s3m "$(median "${sw[@]}")"
    set_cell warmbig rss "$(maxof "${rssw[@]}")"
    # Pairs: curl's 8 ranged GETs, then at once an s3mount cold read (fresh mount, default
    # settings). The groups above run each client's reads together, so load that changes
    # between groups moves their ratio; a pair shares its minute, and the median of the
    # per-pair ratios is the figure to compare with the target.
    seq_pair_s3m() {
        start_s3mount "seq-pair-$1" || return 1
        drop_caches
        pair_value=$(read_file "$mnt_s3m/big/obj")
        stop_s3mount
    }
    pairs seqpair curl8 seq_pair_s3m
    req_row warmreq "seq read warm, s3mount --cache-size $big_cache_mib (2nd read)"
    REQ["warmreq|s3m"]=${warm_reqs:-n/a}
    REQ["warmreq|s3fs"]="—"
fi

# ---------------------------------------------------------------------------------------------
# 2. Random 256 KiB reads (fio, O_DIRECT, one job, psync)
log "2. fio random 256 KiB reads, ${fio_secs} s per run (runs: $fio_runs)"
row fioc MiB/s "fio randread 256 KiB, cold (fresh mount) — server: ranged GETs on one keep-alive connection"
row fiow MiB/s "fio randread 256 KiB, warm (2nd run, same mount), default settings"
row fiowb MiB/s "fio randread 256 KiB, warm, s3mount --cache-size $big_cache_mib"
req_row fio "fio randread 256 KiB, cold run"
if [ $big_ok -eq 1 ]; then
    pc=() pw=()
    for r in $(seq 1 "$fio_runs"); do
        drop_caches
        pc+=("$(s3py randget big/obj "$size_bytes" 262144 "$fio_secs" || echo n/a)")
        pw+=("$(s3py randget big/obj "$size_bytes" 262144 "$fio_secs" || echo n/a)")
    done
    note "server ranged GETs cold: ${pc[*]}; warm: ${pw[*]}"
    set_cell fioc curl "$(median "${pc[@]}")"
    set_cell fiow curl "$(median "${pw[@]}")"
    set_cell fiowb curl "$(median "${pw[@]}")"

    fc=() fw=()
    for r in $(seq 1 "$fio_runs"); do
        start_s3fs "fio-$r" || continue
        drop_caches
        m=$(req_mark)
        fc+=("$(fio_read "$mnt_s3fs/big/obj")")
        [ "$r" -eq 1 ] && REQ["fio|s3fs"]=$(req_since "$m")
        fw+=("$(fio_read "$mnt_s3fs/big/obj")")
        stop_s3fs
    done
    note "s3fs cold: ${fc[*]:-n/a}; warm: ${fw[*]:-n/a}"
    set_cell fioc s3fs "$(median "${fc[@]}")"
    set_cell fiow s3fs "$(median "${fw[@]}")"
    set_cell fiowb s3fs "$(median "${fw[@]}")"

    sc=() sw=() rr=()
    for r in $(seq 1 "$fio_runs"); do
        start_s3mount "fio-default-$r" || continue
        drop_caches
        m=$(req_mark)
        sc+=("$(fio_read "$mnt_s3m/big/obj")")
        [ "$r" -eq 1 ] && REQ["fio|s3m"]=$(req_since "$m")
        sw+=("$(fio_read "$mnt_s3m/big/obj")")
        rr+=("$(s3m_hwm)")
        stop_s3mount
    done
    note "s3mount cold: ${sc[*]:-n/a}; warm: ${sw[*]:-n/a} (RSS ${rr[*]:-n/a})"
    set_cell fioc s3m "$(median "${sc[@]}")"
    set_cell fiow s3m "$(median "${sw[@]}")"
    set_cell fiow rss "$(maxof "${rr[@]}")"
    set_cell fioc rss "$(maxof "${rr[@]}")"

    sw=() rr=()
    for r in $(seq 1 "$fio_runs"); do
        start_s3mount "fio-cachebig-$r" --cache-size "$big_cache_mib" || continue
        drop_caches
        fio_read "$mnt_s3m/big/obj" >/dev/null
        sw+=("$(fio_read "$mnt_s3m/big/obj")")
        rr+=("$(s3m_hwm)")
        stop_s3mount
    done
    note "s3mount --cache-size $big_cache_mib warm: ${sw[*]:-n/a} (RSS ${rr[*]:-n/a})"
    set_cell fiowb s3m "$(median "${sw[@]}")"
    set_cell fiowb rss "$(maxof "${rr[@]}")"
fi

# ---------------------------------------------------------------------------------------------
# 3. ls -l of a directory of $list_files objects
log "3. ls -l of $list_files objects"
row ls s "ls -l of $list_files objects, fresh mount — server: paginated ListObjectsV2, Delimiter='/' (boto3)"
row lsw s "ls -l of $list_files objects, 2nd time in the same mount (s3mount: within --metadata-ttl) — server: as above"
req_row ls "ls -l of $list_files objects, fresh mount"
req_row lsw "ls -l of $list_files objects, 2nd time"
# ls_dir DIR [COUNT]: time `ls -l DIR`, checking the entry count (default $list_files); prints seconds.
ls_dir() {
    local n want=${2:-$list_files}
    if ! timed ls -l "$1" >"$work/ls.out" 2>"$work/ls.err"; then
        fail "ls -l $1 failed: $(head -n 2 "$work/ls.err" | tr '\n' ' ')"
        echo n/a
        return
    fi
    n=$(($(wc -l <"$work/ls.out") - 1))
    if [ "$n" -ne "$want" ]; then
        fail "ls -l $1 listed $n entries, expected $want"
        echo n/a
        return
    fi
    printf '%s' "$ELAPSED"
}
if [ $list_ok -eq 1 ]; then
    lc=()
    for r in $(seq 1 "$runs"); do
        m=$(req_mark)
        out=$(s3py list list) || { fail "boto3 LIST failed"; continue; }
        [ "$r" -eq 1 ] && REQ["ls|curl"]=$(req_since "$m")
        lc+=("${out%% *}")
        ls_pages=$(echo "$out" | cut -d' ' -f2)
    done
    note "boto3 LIST: ${lc[*]:-n/a} s ($out: seconds pages entries)"
    set_cell ls curl "$(median "${lc[@]}")"

    set_cell lsw curl "$(median "${lc[@]}")"
    REQ["lsw|curl"]=${REQ["ls|curl"]:-}

    fl=() fw=()
    for r in $(seq 1 "$runs"); do
        start_s3fs "ls-$r" || continue
        m=$(req_mark)
        fl+=("$(ls_dir "$mnt_s3fs/list")")
        [ "$r" -eq 1 ] && REQ["ls|s3fs"]=$(req_since "$m")
        m=$(req_mark)
        fw+=("$(ls_dir "$mnt_s3fs/list")")
        [ "$r" -eq 1 ] && REQ["lsw|s3fs"]=$(req_since "$m")
        stop_s3fs
    done
    note "s3fs: ${fl[*]:-n/a} s; 2nd time: ${fw[*]:-n/a} s"
    set_cell ls s3fs "$(median "${fl[@]}")"
    set_cell lsw s3fs "$(median "${fw[@]}")"

    sl=() sw=() rr=()
    for r in $(seq 1 "$runs"); do
        start_s3mount "ls-$r" || continue
        m=$(req_mark)
        sl+=("$(ls_dir "$mnt_s3m/list")")
        [ "$r" -eq 1 ] && REQ["ls|s3m"]=$(req_since "$m")
        m=$(req_mark)
        sw+=("$(ls_dir "$mnt_s3m/list")")
        [ "$r" -eq 1 ] && REQ["lsw|s3m"]=$(req_since "$m")
        rr+=("$(s3m_hwm)")
        stop_s3mount
    done
    note "s3mount: ${sl[*]:-n/a} s; 2nd time: ${sw[*]:-n/a} s (RSS ${rr[*]:-n/a})"
    set_cell ls s3m "$(median "${sl[@]}")"
    set_cell lsw s3m "$(median "${sw[@]}")"
    set_cell ls rss "$(maxof "${rr[@]}")"
    set_cell lsw rss "$(maxof "${rr[@]}")"
fi

# ---------------------------------------------------------------------------------------------
# 4. cat of $small_files x 4 KiB files
log "4. cat of $small_files x 4 KiB files"
row catls s "cat $small_files x 4 KiB files after an ls of their directory (ls not timed) — curl: one invocation, keep-alive"
row catnols s "cat $small_files x 4 KiB files, no ls before (fresh mount) — curl: as above"
req_row catls "cat $small_files files after ls (cat only)"
req_row catnols "cat $small_files files, no ls"
# cat_files DIR: time `cat` of every small file by name (xargs batches names into few cats).
# The subshell (for cd) cannot hand ELAPSED back: timed_to_file writes it to a file.
timed_to_file() { timed "$@"; local rc=$?; printf '%s' "$ELAPSED" >"$work/cat.time"; return $rc; }
cat_files() {
    local bytes rc
    (cd "$1" && timed_to_file xargs -a "$work/small-names" cat >"$work/cat.out" 2>"$work/cat.err")
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "cat in $1 failed: $(head -n 2 "$work/cat.err" | tr '\n' ' ')"
        echo n/a
        return
    fi
    bytes=$(stat -c %s "$work/cat.out")
    if [ "$bytes" -ne $((small_files * 4096)) ]; then
        fail "cat in $1 read $bytes bytes, expected $((small_files * 4096))"
        echo n/a
        return
    fi
    cat "$work/cat.time"
}
if [ $small_ok -eq 1 ]; then
    s3py curlcfg small "$small_files" >"$work/curl.cfg" || fail "presigning failed"
    cc=()
    for r in $(seq 1 "$runs"); do
        m=$(req_mark)
        if timed curl -s -K "$work/curl.cfg" -w '%{http_code}\n' >"$work/curl.codes" 2>/dev/null &&
            [ "$(grep -c '^200$' "$work/curl.codes")" -eq "$small_files" ]; then
            cc+=("$ELAPSED")
        else
            fail "curl loop over $small_files objects failed"
        fi
        [ "$r" -eq 1 ] && REQ["catls|curl"]=$(req_since "$m") && REQ["catnols|curl"]=${REQ["catls|curl"]}
    done
    note "curl: ${cc[*]:-n/a} s"
    set_cell catls curl "$(median "${cc[@]}")"
    set_cell catnols curl "$(median "${cc[@]}")"

    for who in s3fs s3m; do
        al=() nl=() rr=()
        for r in $(seq 1 "$runs"); do
            if [ $who = s3fs ]; then start_s3fs "cat-ls-$r" || continue; dir=$mnt_s3fs/small; else start_s3mount "cat-ls-$r" || continue; dir=$mnt_s3m/small; fi
            ls -l "$dir" >/dev/null 2>&1 || fail "$who: ls -l $dir failed"
            m=$(req_mark)
            al+=("$(cat_files "$dir")")
            [ "$r" -eq 1 ] && REQ["catls|$who"]=$(req_since "$m")
            if [ $who = s3fs ]; then stop_s3fs; else rr+=("$(s3m_hwm)"); stop_s3mount; fi

            if [ $who = s3fs ]; then start_s3fs "cat-nols-$r" || continue; else start_s3mount "cat-nols-$r" || continue; fi
            m=$(req_mark)
            nl+=("$(cat_files "$dir")")
            [ "$r" -eq 1 ] && REQ["catnols|$who"]=$(req_since "$m")
            if [ $who = s3fs ]; then stop_s3fs; else rr+=("$(s3m_hwm)"); stop_s3mount; fi
        done
        note "$(who_name $who): after ls ${al[*]:-n/a} s; no ls ${nl[*]:-n/a} s"
        set_cell catls "$who" "$(median "${al[@]}")"
        set_cell catnols "$who" "$(median "${nl[@]}")"
        if [ $who = s3m ]; then
            set_cell catls rss "$(maxof "${rr[@]}")"
            set_cell catnols rss "$(maxof "${rr[@]}")"
        fi
    done
fi

# ---------------------------------------------------------------------------------------------
# 5. Sequential write of a ${size_mib} MiB file into the mount
log "5. sequential write of ${size_mib} MiB (runs: $runs)"
row write MiB/s "seq write ${size_mib} MiB (dd bs=1M conv=fsync; the time includes the close, when the upload completes) — server: aws s3 cp upload"
req_row write "seq write ${size_mib} MiB, one run (curl column: aws s3 cp)"
# The aws CLI: path-style addressing, and checksums only when an API requires one (s3rver
# stores aws-chunked framing raw). The upload is read back and compared below.
aws_cfg=$work/aws-config
printf '[default]\nregion = us-east-1\nrequest_checksum_calculation = when_required\nresponse_checksum_validation = when_required\ns3 =\n    addressing_style = path\n' >"$aws_cfg"
aws_cli=(env AWS_CONFIG_FILE="$aws_cfg" aws --endpoint-url "$endpoint")
# prep_write: flush the server's earlier writes, drop the page cache, then read the local source
# file once, so that every writer starts alike and reads its source from memory.
prep_write() {
    drop_caches
    cat "$big_local" >/dev/null
}
# check_object KEY WHO: the object KEY holds exactly the local file's bytes.
check_object() {
    local url
    url=$(s3py presign "$1") || { fail "$2: presigning $1 failed"; return 1; }
    if curl -sf "$url" | cmp -s - "$big_local"; then
        note "$2: $1 read back identical (GET through the S3 API)"
    else
        fail "$2: the uploaded object $1 does not hold the written bytes"
        return 1
    fi
}
# write_file DST: dd the local file to DST with conv=fsync; prints MiB/s.
write_file() {
    local out bytes
    if ! timed dd if="$big_local" of="$1" bs=1M conv=fsync 2>"$work/dd.err"; then
        fail "dd to $1 failed: $(tail -n 2 "$work/dd.err" | tr '\n' ' ')"
        echo n/a
        return
    fi
    out=$(tail -n 1 "$work/dd.err")
    bytes=${out%% bytes*}
    if [ "$bytes" != "$size_bytes" ]; then
        fail "dd to $1 wrote $bytes bytes, expected $size_bytes"
        echo n/a
        return
    fi
    mibps "$size_bytes" "$ELAPSED"
}
if s3py put wr/; then
    wa=()
    if command -v aws >/dev/null 2>&1; then
        t0=$(now)
        "${aws_cli[@]}" s3 ls "s3://$bucket/nothing-here/" >/dev/null 2>&1
        aws_startup=$(elapsed_since "$t0")
        for r in $(seq 1 "$runs"); do
            prep_write
            m=$(req_mark)
            if timed "${aws_cli[@]}" s3 cp --only-show-errors "$big_local" "s3://$bucket/wr/aws-$r" >"$work/aws.err" 2>&1; then
                wa+=("$(mibps "$size_bytes" "$ELAPSED")")
                if [ "$r" -eq 1 ]; then
                    REQ["write|curl"]=$(req_since "$m")
                    check_object "wr/aws-$r" "aws s3 cp" || aws_data_bad=1
                fi
            else
                fail "aws s3 cp failed: $(tail -n 2 "$work/aws.err" | tr '\n' ' ')"
            fi
            s3py delete "wr/aws-$r"
        done
    else
        fail "the aws CLI is not installed: no aws s3 cp baseline"
    fi
    note "aws s3 cp: ${wa[*]:-n/a} MiB/s (the CLI's start-up, one 'aws s3 ls': ${aws_startup:-n/a} s)"
    set_cell write curl "$(median "${wa[@]}")"

    fw=() fr=()
    for r in $(seq 1 "$runs"); do
        start_s3fs "write-$r" || continue
        prep_write
        m=$(req_mark)
        fw+=("$(write_file "$mnt_s3fs/wr/s3fs-$r")")
        [ "$r" -eq 1 ] && REQ["write|s3fs"]=$(req_since "$m")
        fr+=("$(s3fs_hwm)")
        [ "$r" -eq 1 ] && check_object "wr/s3fs-$r" s3fs
        stop_s3fs
        s3py delete "wr/s3fs-$r"
    done
    note "s3fs: ${fw[*]:-n/a} MiB/s (peak RSS MiB: ${fr[*]:-n/a})"
    set_cell write s3fs "$(median "${fw[@]}")"
    s3fs_write_rss=$(maxof "${fr[@]}")

    sw=() rr=()
    for r in $(seq 1 "$runs"); do
        start_s3mount "write-$r" || continue
        prep_write
        m=$(req_mark)
        c0=$(cpu_secs "$s3m_pid") k0=$(cpu_secs "$s3rver_pid")
        v=$(write_file "$mnt_s3m/wr/s3m-$r")
        sw+=("$v")
        if [ "$r" -eq 1 ]; then
            REQ["write|s3m"]=$(req_since "$m")
            cpu_write="s3mount $(cpu_delta "$c0" "$(cpu_secs "$s3m_pid")") s + s3rver $(cpu_delta "$k0" "$(cpu_secs "$s3rver_pid")") s CPU for $v MiB/s"
        fi
        rr+=("$(s3m_hwm)")
        # Checked before unmounting: the object must be in the bucket once close() has returned.
        check_object "wr/s3m-$r" s3mount || s3m_write_bad=1
        stop_s3mount
        s3py delete "wr/s3m-$r"
    done
    note "s3mount: ${sw[*]:-n/a} MiB/s (peak RSS MiB: ${rr[*]:-n/a})"
    set_cell write s3m "$(median "${sw[@]}")"
    set_cell write rss "$(maxof "${rr[@]}")"
else
    fail "cannot create the wr/ directory marker"
fi

# ---------------------------------------------------------------------------------------------
# 6. Creating $small_files files of 4 KiB
log "6. creating $small_files x 4 KiB files with cp -r (runs: $runs)"
row create files/s "create $small_files x 4 KiB files (cp -r of a local directory to a new directory) — server: PutObject one after another (boto3, one connection)"
req_row create "create $small_files x 4 KiB files, one run (curl column: boto3 PutObject loop)"
smalldir=$work/smalldir
mkdir -p "$smalldir"
"$py" -c 'import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(os.urandom(4096))' "$smalldir" "$small_files" || fail "cannot write $smalldir"
per_sec() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", n / s; else print "n/a" }'; }
# create_files DST: time `cp -r` of the local directory to DST (which must not exist); files/s.
create_files() {
    cat "$smalldir"/* >/dev/null
    if ! timed cp -r "$smalldir" "$1" 2>"$work/cp.err"; then
        fail "cp -r to $1 failed: $(head -n 2 "$work/cp.err" | tr '\n' ' ')"
        echo n/a
        return
    fi
    per_sec "$small_files" "$ELAPSED"
}
pc=()
for r in $(seq 1 "$runs"); do
    m=$(req_mark)
    if out=$(s3py putdir "wr/put-$r" "$smalldir"); then
        pc+=("$(per_sec "$small_files" "$out")")
    else
        fail "boto3 PutObject loop failed"
    fi
    [ "$r" -eq 1 ] && REQ["create|curl"]=$(req_since "$m")
done
note "boto3 PutObject loop: ${pc[*]:-n/a} files/s"
set_cell create curl "$(median "${pc[@]}")"
for who in s3fs s3m; do
    cr=() rr=()
    for r in $(seq 1 "$runs"); do
        if [ $who = s3fs ]; then start_s3fs "create-$r" || continue; dir=$mnt_s3fs; else start_s3mount "create-$r" || continue; dir=$mnt_s3m; fi
        m=$(req_mark)
        cr+=("$(create_files "$dir/wr/mk-$who-$r")")
        [ "$r" -eq 1 ] && REQ["create|$who"]=$(req_since "$m")
        if [ $who = s3m ]; then rr+=("$(s3m_hwm)"); fi
        if [ "$r" -eq 1 ]; then
            if s3py verifydir "wr/mk-$who-$r" "$smalldir" 2>"$work/verify.err"; then
                note "$(who_name $who): the $small_files created objects hold the written bytes"
            else
                fail "$(who_name $who): created files differ in the bucket: $(tail -n 1 "$work/verify.err")"
            fi
        fi
        if [ $who = s3fs ]; then stop_s3fs; else stop_s3mount; fi
    done
    note "$(who_name $who): ${cr[*]:-n/a} files/s"
    set_cell create "$who" "$(median "${cr[@]}")"
    [ $who = s3m ] && set_cell create rss "$(maxof "${rr[@]}")"
done

# ---------------------------------------------------------------------------------------------
# 7. Time to first byte of the big object, on loopback and through a proxy that adds latency
log "7. time to the first byte of the ${size_mib} MiB object (runs: $ttfb_runs)"
row ttfb ms "time to first byte of a ${size_mib} MiB file: open + read of 1 byte on a fresh mount, page cache dropped — curl: one ranged GET bytes=0-1"
req_row ttfb "first byte of the ${size_mib} MiB file, fresh mount (curl column: the ranged GET)"
row ttfblat ms "time to first byte as above, through a proxy that adds ${latency_ms} ms to every request (a distant endpoint: round trips dominate)"
req_row ttfblat "first byte, fresh mount, through the latency proxy"
cat >"$work/ttfb.py" <<'EOF'
import os
import sys
import time

t0 = time.perf_counter()
fd = os.open(sys.argv[1], os.O_RDONLY)
t1 = time.perf_counter()
b = os.read(fd, 1)
t2 = time.perf_counter()
os.close(fd)
if len(b) != 1:
    sys.exit("read returned %d bytes" % len(b))
print("%.2f %.2f %.2f" % ((t2 - t0) * 1000, (t1 - t0) * 1000, (t2 - t1) * 1000))
EOF
# A TCP proxy that holds every chunk a client sends for DELAY ms: one delay per request.
cat >"$work/latency-proxy.py" <<'EOF'
import asyncio
import sys

LISTEN, UPSTREAM, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000


async def pipe(reader, writer, delay):
    try:
        while data := await reader.read(1 << 16):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def handle(client_r, client_w):
    server_r, server_w = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    await asyncio.gather(pipe(client_r, server_w, DELAY), pipe(server_r, client_w, 0))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server:
        await server.serve_forever()


asyncio.run(main())
EOF
declare -A TTFB_SPLIT=()
# ttfb FILE: prints "total open read" in ms, or n/a.
ttfb() {
    local out
    if out=$(timeout -k 10 "$cmd_timeout" "$py" "$work/ttfb.py" "$1" 2>"$work/ttfb.err"); then
        echo "$out"
    else
        fail "first byte of $1: $(tail -n 1 "$work/ttfb.err")"
        echo "n/a n/a n/a"
    fi
}
# ttfb_row ROW URL: fills row ROW against the server at $endpoint; URL is the object presigned
# for that endpoint.
ttfb_row() {
    local rid=$1 url=$2 r out m who dir a b c
    local tc=() tt=() to=() tr=() rr=()
    for r in $(seq 1 "$ttfb_runs"); do
        drop_caches
        m=$(req_mark)
        # bytes=0-1, not 0-0: s3rver 3.7.1 reads "end 0" as no end and sends the whole object.
        if out=$(curl -sf -r 0-1 -o /dev/null -w '%{time_total}' "$url"); then
            tc+=("$(awk -v s="$out" 'BEGIN { printf "%.2f", s * 1000 }')")
        else
            fail "curl ranged GET failed ($rid)"
        fi
        [ "$r" -eq 1 ] && REQ["$rid|curl"]=$(req_since "$m")
    done
    note "$rid: curl bytes=0-1: ${tc[*]:-n/a} ms"
    set_cell "$rid" curl "$(median "${tc[@]}")"
    for who in s3fs s3m; do
        tt=() to=() tr=() rr=()
        for r in $(seq 1 "$ttfb_runs"); do
            if [ $who = s3fs ]; then start_s3fs "$rid-$r" || continue; dir=$mnt_s3fs; else start_s3mount "$rid-$r" || continue; dir=$mnt_s3m; fi
            drop_caches
            m=$(req_mark)
            read -r a b c < <(ttfb "$dir/big/obj")
            tt+=("$a") to+=("$b") tr+=("$c")
            [ "$r" -eq 1 ] && REQ["$rid|$who"]=$(req_since "$m")
            if [ $who = s3fs ]; then stop_s3fs; else rr+=("$(s3m_hwm)"); stop_s3mount; fi
        done
        note "$rid: $(who_name $who): total ${tt[*]:-n/a} ms (open ${to[*]:-n/a}; read ${tr[*]:-n/a})"
        set_cell "$rid" "$who" "$(median "${tt[@]}")"
        TTFB_SPLIT["$rid|$who"]="open (path lookup) $(median "${to[@]}") ms + read of 1 byte $(median "${tr[@]}") ms"
        [ $who = s3m ] && set_cell "$rid" rss "$(maxof "${rr[@]}")"
    done
}
lat_pid=
if [ $big_ok -eq 1 ]; then
    ttfb_row ttfb "$big_url"
    lat_port=$(s3m_free_port)
    "$py" "$work/latency-proxy.py" "$lat_port" "$port" "$latency_ms" >"$logs/latency-proxy.log" 2>&1 &
    lat_pid=$!
    for _ in $(seq 1 50); do s3m_port_open "$lat_port" && break; sleep 0.1; done
    if s3m_port_open "$lat_port"; then
        direct=$endpoint
        endpoint=http://127.0.0.1:$lat_port
        ttfb_row ttfblat "$(s3py presign big/obj)"
        endpoint=$direct
    else
        fail "the latency proxy did not start: $(tail -n 2 "$logs/latency-proxy.log" | tr '\n' ' ')"
    fi
    s3m_stop_pid "$lat_pid" 5
    lat_pid=
fi

# ---------------------------------------------------------------------------------------------
# 8. Many large files read at once
log "8. 16 and 4 files of ${multi_mib} MiB read at once (runs: $runs)"
row multi16 MiB/s "16 files of ${multi_mib} MiB read at once (16 dd), cold, default settings — curl: 16 parallel GETs (aggregate)"
row multi4 MiB/s "4 files of ${multi_mib} MiB read at once (4 dd), cold, default settings — curl: 8 parallel ranged GETs, 2 per file (aggregate)"
row multi4pair MiB/s "4 files of ${multi_mib} MiB read at once, in pairs: curl 8 ranged GETs over the 4, then s3mount's 4 dd at once (ratio: median of the per-pair ratios)"
req_row multi16 "16 files of ${multi_mib} MiB read at once, one run"
req_row multi4 "4 files of ${multi_mib} MiB read at once, one run"
multi_keys=() multi_local=()
for i in $(seq 0 15); do
    multi_keys+=("$(printf 'multi/o%02d' "$i")")
    multi_local+=("$work/multi-$i.bin")
done
multi_ok=0
t0=$(now)
for i in $(seq 0 15); do
    head -c "$multi_bytes" /dev/urandom >"${multi_local[$i]}" || break
done
if s3py upload_files multi "${multi_local[@]}" 2>"$work/multi-upload.err"; then
    multi_ok=1
    mapfile -t multi_urls < <(s3py presign_many "${multi_keys[@]}")
    note "uploaded 16 x ${multi_mib} MiB of distinct random data in $(elapsed_since "$t0") s"
else
    fail "uploading the 16 objects failed: $(tail -n 1 "$work/multi-upload.err")"
fi
# par_read SIZE FILE...: read every FILE at once with dd; prints the aggregate MiB/s.
par_read() {
    local size=$1 n i t0 el ok=1 pids=() out
    shift
    n=$#
    t0=$(now)
    i=0
    for f in "$@"; do
        timeout -k 10 "$cmd_timeout" dd if="$f" of=/dev/null bs=1M 2>"$work/pdd.$i" &
        pids+=($!)
        i=$((i + 1))
    done
    for p in "${pids[@]}"; do wait "$p" || ok=0; done
    el=$(elapsed_since "$t0")
    for i in $(seq 0 $((n - 1))); do
        out=$(tail -n 1 "$work/pdd.$i")
        [ "${out%% bytes*}" = "$size" ] || ok=0
    done
    if [ $ok -eq 1 ]; then
        mibps $((size * n)) "$el"
    else
        fail "parallel dd of $n files failed: $(tail -q -n 1 "$work"/pdd.* | sort | uniq -c | head -n 3 | tr '\n' ' ')"
        echo n/a
    fi
    rm -f "$work"/pdd.*
}
# par_curl TOTAL_BYTES SPEC...: run every SPEC ("RANGE@URL", RANGE "-" for the whole object) at once.
par_curl() {
    local total=$1 t0 pids=() ok=1 spec
    shift
    t0=$(now)
    for spec in "$@"; do
        if [ "${spec%%@*}" = - ]; then
            timeout -k 10 "$cmd_timeout" curl -sf -o /dev/null "${spec#*@}" &
        else
            timeout -k 10 "$cmd_timeout" curl -sf -r "${spec%%@*}" -o /dev/null "${spec#*@}" &
        fi
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || ok=0; done
    if [ $ok -eq 1 ]; then mibps "$total" "$(elapsed_since "$t0")"; else echo n/a; fi
}
if [ $multi_ok -eq 1 ]; then
    specs16=() specs4=()
    half=$((multi_bytes / 2))
    for i in $(seq 0 15); do specs16+=("-@${multi_urls[$i]}"); done
    for i in 0 1 2 3; do specs4+=("0-$((half - 1))@${multi_urls[$i]}" "$half-$((multi_bytes - 1))@${multi_urls[$i]}"); done
    c16=() c4=()
    for r in $(seq 1 "$runs"); do
        drop_caches
        m=$(req_mark)
        c16+=("$(par_curl $((16 * multi_bytes)) "${specs16[@]}")")
        [ "$r" -eq 1 ] && REQ["multi16|curl"]=$(req_since "$m")
        drop_caches
        c4+=("$(par_curl $((4 * multi_bytes)) "${specs4[@]}")")
    done
    note "curl 16 GETs: ${c16[*]:-n/a}; curl 8 ranged GETs over 4 files: ${c4[*]:-n/a} MiB/s"
    set_cell multi16 curl "$(median "${c16[@]}")"
    set_cell multi4 curl "$(median "${c4[@]}")"
    for who in s3fs s3m; do
        v16=() v4=() r16=() r4=()
        for r in $(seq 1 "$runs"); do
            for k in 16 4; do
                if [ $who = s3fs ]; then start_s3fs "multi$k-$r" || continue; dir=$mnt_s3fs; else start_s3mount "multi$k-$r" || continue; dir=$mnt_s3m; fi
                files=()
                for i in $(seq 0 $((k - 1))); do files+=("$dir/${multi_keys[$i]}"); done
                drop_caches
                m=$(req_mark)
                v=$(par_read "$multi_bytes" "${files[@]}")
                [ "$r" -eq 1 ] && REQ["multi$k|$who"]=$(req_since "$m")
                if [ $who = s3fs ]; then h=$(s3fs_hwm); stop_s3fs; else h=$(s3m_hwm); stop_s3mount; fi
                if [ $k = 16 ]; then v16+=("$v") r16+=("$h"); else v4+=("$v") r4+=("$h"); fi
            done
        done
        note "$(who_name $who): 16 files ${v16[*]:-n/a} MiB/s (peak RSS MiB ${r16[*]:-n/a}); 4 files ${v4[*]:-n/a} MiB/s (peak RSS MiB ${r4[*]:-n/a})"
        set_cell multi16 "$who" "$(median "${v16[@]}")"
        set_cell multi4 "$who" "$(median "${v4[@]}")"
        if [ $who = s3m ]; then
            set_cell multi16 rss "$(maxof "${r16[@]}")"
            set_cell multi4 rss "$(maxof "${r4[@]}")"
        else
            s3fs_multi_rss=$(maxof "${r16[@]}" "${r4[@]}")
        fi
    done
    # Pairs (see the sequential read): curl's 8 ranged GETs over the 4 files, then at once
    # s3mount's 4 dd on a fresh mount.
    multi4_pair_curl() { par_curl $((4 * multi_bytes)) "${specs4[@]}"; }
    multi4_pair_s3m() {
        start_s3mount "multi4-pair-$1" || return 1
        local files=() i
        for i in 0 1 2 3; do files+=("$mnt_s3m/${multi_keys[$i]}"); done
        drop_caches
        pair_value=$(par_read "$multi_bytes" "${files[@]}")
        stop_s3mount
    }
    pairs multi4pair multi4_pair_curl multi4_pair_s3m
    # Data check: 16 cold reads at once through one fresh mount, each compared with its source.
    if start_s3mount multi-check; then
        drop_caches
        pids=()
        for i in $(seq 0 15); do
            cmp -s "$mnt_s3m/${multi_keys[$i]}" "${multi_local[$i]}" &
            pids+=($!)
        done
        bad=0
        for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
        if [ $bad -eq 0 ]; then
            note "s3mount data check, 16 files read at once: all identical"
        else
            fail "s3mount returned different bytes for $bad of the 16 files read at once"
            s3m_data_bad=1
        fi
        stop_s3mount
    fi
fi
rm -f "${multi_local[@]}"

# ---------------------------------------------------------------------------------------------
# 9. ls -l at several directory sizes
log "9. ls -l of directories of $list_sizes objects"
declare -A LG=()
for n in $list_sizes; do
    if [ "$n" -eq "$list_files" ]; then # measured in part 3
        LG["$n|boto"]=${CELL["ls|curl"]:-n/a}
        LG["$n|s3m"]=${CELL["ls|s3m"]:-n/a}
        LG["$n|s3fs"]=${CELL["ls|s3fs"]:-n/a}
        LG["$n|pages"]=${ls_pages:-n/a}
        LG["$n|runs"]=$runs
        continue
    fi
    nr=$runs
    [ "$n" -gt $list_large ] && nr=1
    LG["$n|runs"]=$nr
    row "ls$n" s "ls -l of $n objects, fresh mount — server: paginated ListObjectsV2, Delimiter='/' (boto3)"
    req_row "ls$n" "ls -l of $n objects, fresh mount"
    t0=$(now)
    if ! s3py seed "list$n" "$n" 128; then
        fail "seeding $n list objects failed"
        continue
    fi
    note "seeded $n objects under list$n/ in $(elapsed_since "$t0") s"
    lc=()
    for r in $(seq 1 "$nr"); do
        m=$(req_mark)
        out=$(s3py list "list$n") || { fail "boto3 LIST of $n failed"; continue; }
        [ "$r" -eq 1 ] && REQ["ls$n|curl"]=$(req_since "$m")
        lc+=("${out%% *}")
        LG["$n|pages"]=$(echo "$out" | cut -d' ' -f2)
    done
    note "boto3 LIST of $n: ${lc[*]:-n/a} s"
    set_cell "ls$n" curl "$(median "${lc[@]}")"
    if [ "$n" -le $list_large ]; then
        fl=()
        for r in $(seq 1 "$nr"); do
            start_s3fs "ls$n-$r" || continue
            m=$(req_mark)
            fl+=("$(ls_dir "$mnt_s3fs/list$n" "$n")")
            [ "$r" -eq 1 ] && REQ["ls$n|s3fs"]=$(req_since "$m")
            stop_s3fs
        done
        note "s3fs ls -l of $n: ${fl[*]:-n/a} s"
        set_cell "ls$n" s3fs "$(median "${fl[@]}")"
    else
        set_cell "ls$n" s3fs "not run"
        REQ["ls$n|s3fs"]="not run"
    fi
    sl=() rr=()
    for r in $(seq 1 "$nr"); do
        start_s3mount "ls$n-$r" || continue
        m=$(req_mark)
        sl+=("$(ls_dir "$mnt_s3m/list$n" "$n")")
        [ "$r" -eq 1 ] && REQ["ls$n|s3m"]=$(req_since "$m")
        rr+=("$(s3m_hwm)")
        stop_s3mount
    done
    note "s3mount ls -l of $n: ${sl[*]:-n/a} s (RSS ${rr[*]:-n/a})"
    set_cell "ls$n" s3m "$(median "${sl[@]}")"
    set_cell "ls$n" rss "$(maxof "${rr[@]}")"
    LG["$n|boto"]=${CELL["ls$n|curl"]}
    LG["$n|s3m"]=${CELL["ls$n|s3m"]}
    LG["$n|s3fs"]=${CELL["ls$n|s3fs"]}
done

# ---------------------------------------------------------------------------------------------
# Report
per_k() { awk -v s="$1" -v n="$2" 'BEGIN { if (s + 0 > 0 && s != "n/a") printf "%.0f", s * 1000 / n * 1000; else print "n/a" }'; }
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0 && a != "n/a" && b != "n/a") printf "%.2f", a / b; else print "n/a" }'
}
report() {
    count_failures
    machine_info
    echo
    echo "MiB/s and files/s rows: higher is better, a ratio above 1 means s3mount is faster."
    echo "s (seconds) and ms rows: lower is better, a ratio below 1 means s3mount is faster."
    echo
    echo "| workload | unit | curl/server | s3fs | s3mount | s3mount/curl | s3mount/s3fs | s3mount peak RSS |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    local id c f s r
    for id in "${ROWS[@]}"; do
        c=${CELL["$id|curl"]:-n/a}
        f=${CELL["$id|s3fs"]:-n/a}
        s=${CELL["$id|s3m"]:-n/a}
        r=${CELL["$id|rss"]:-n/a}
        [ "$r" != n/a ] && r="$r MiB"
        echo "| ${CELL["$id|label"]} | ${CELL["$id|unit"]} | $c | $f | $s | ${CELL["$id|pairratio"]:-$(ratio "$s" "$c")} | $(ratio "$s" "$f") | $r |"
    done
    echo
    echo "Requests seen by the server (the s3rver wrapper's request log): count per kind, ~ the server's mean"
    echo "time per request of that kind (first byte in to last byte out), and the mean size of ranged GETs:"
    echo
    echo "| workload | curl/boto3 | s3fs | s3mount |"
    echo "|---|---:|---:|---:|"
    for id in "${REQ_ROWS[@]}"; do
        echo "| ${REQ["$id|label"]} | ${REQ["$id|curl"]:-—} | ${REQ["$id|s3fs"]:-n/a} | ${REQ["$id|s3m"]:-n/a} |"
    done
    echo
    echo "Listing growth (ls -l on a fresh mount vs the bare paginated LIST calls; s3rver's own LIST costs more"
    echo "per page as the directory grows, so the ratio is the measure of s3mount's overhead):"
    echo
    echo "| objects | LIST pages | boto3 LIST | s3mount ls -l | s3mount/LIST | s3fs ls -l | LIST ms per 1,000 entries | s3mount ms per 1,000 entries | runs |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    local n b
    for n in $(printf '%s\n' $list_sizes | sort -n | uniq); do
        b=${LG["$n|boto"]:-n/a}
        s=${LG["$n|s3m"]:-n/a}
        echo "| $n | ${LG["$n|pages"]:-n/a} | $b s | $s s | $(ratio "$s" "$b") | ${LG["$n|s3fs"]:-n/a}$(case ${LG["$n|s3fs"]:-n/a} in n/a|not*) ;; *) printf ' s' ;; esac) | $(per_k "$b" "$n") | $(per_k "$s" "$n") | ${LG["$n|runs"]:-n/a} |"
    done
    echo
    echo "s3fs peak RSS during the sequential reads: ${s3fs_seq_rss:-n/a} MiB; during the ${size_mib} MiB write: ${s3fs_write_rss:-n/a} MiB; with 16 or 4 files read at once: ${s3fs_multi_rss:-n/a} MiB."
    echo "CPU time of one cold sequential read of the ${size_mib} MiB object (2 cores: 2 CPU-s per wall-clock s):"
    echo "curl 8 ranged GETs: ${cpu_curl:-n/a}; s3fs: ${cpu_s3fs:-n/a}; s3mount: ${cpu_s3m:-n/a}."
    echo "CPU time of one ${size_mib} MiB write through s3mount: ${cpu_write:-n/a}."
    echo "aws CLI start-up (one 'aws s3 ls' of an empty prefix, included in every aws s3 cp time): ${aws_startup:-n/a} s."
    echo "Time to first byte, split (medians): s3mount ${TTFB_SPLIT[ttfb|s3m]:-n/a}; s3fs ${TTFB_SPLIT[ttfb|s3fs]:-n/a}."
    echo "The same with ${latency_ms} ms added to every request: s3mount ${TTFB_SPLIT[ttfblat|s3m]:-n/a}; s3fs ${TTFB_SPLIT[ttfblat|s3fs]:-n/a}."
    echo "Load average (1 min) at the start of each part: ${loads[*]:-n/a}."
    [ -z "${s3m_write_bad:-}" ] || echo "WARNING: an object written through s3mount does not hold the written bytes."
    [ -z "${aws_data_bad:-}" ] || echo "WARNING: the aws s3 cp upload does not read back identical (checksum framing stored raw?)."
    [ -z "${s3m_data_bad:-}" ] || echo "WARNING: s3mount returned different bytes than were uploaded."
    [ "$failures" -eq 0 ] || echo "$failures step(s) failed: their cells show n/a (see the warnings above)."
    echo "Total time: $((SECONDS - bench_start)) s."
}
log "done"
echo
report | tee ${BENCH_OUT:+"$BENCH_OUT"}
