#!/usr/bin/env bash
# Demo: mount a local S3 bucket (moto) with s3mount and look around.
#
#   ./scripts/demo.sh [--no-wait] [--mountpoint DIR] [--large-mib N]
#
# Installs what is missing (fuse3 attr rsync, moto[server]==5.2.5 in a venv), builds s3mount
# (release), starts moto_server on a free 127.0.0.1 port, creates the bucket `s3mount-demo` with
# nested directories, a large file and tagged objects with user metadata, mounts it with
# `s3mount --foreground`, shows `ls -lR`, `cat` and `getfattr -d`, then stays mounted until
# Ctrl-C (or, with --no-wait, unmounts and exits). Everything is cleaned up on exit.
#
#   --no-wait          unmount and exit right after the tour
#   --mountpoint DIR   mount there (created if missing) instead of a temporary directory
#   --large-mib N      size of data/large.bin (default 64)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$S3M_ROOT"

wait_for_ctrl_c=1
mountpoint=
large_mib=64
bucket=s3mount-demo
while [ $# -gt 0 ]; do
    case $1 in
        --no-wait) wait_for_ctrl_c=0 ;;
        --mountpoint) mountpoint=${2:?--mountpoint needs a directory}; shift ;;
        --mountpoint=*) mountpoint=${1#*=} ;;
        --large-mib) large_mib=${2:?--large-mib needs a number}; shift ;;
        --large-mib=*) large_mib=${1#*=} ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) s3m_die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
case $large_mib in ''|*[!0-9]*) s3m_die "--large-mib needs a whole number" ;; esac

s3m_aws_env
s3m_ensure_apt_deps
s3m_ensure_moto

s3m_log "building s3mount (release)"
cargo build --release --bin s3mount
target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$S3M_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
s3mount_bin=$target_dir/release/s3mount
[ -x "$s3mount_bin" ] || s3m_die "no binary at $s3mount_bin"

workdir=$(mktemp -d "${TMPDIR:-/tmp}/s3mount-demo.XXXXXX")
if [ -z "$mountpoint" ]; then
    mountpoint=$workdir/mnt
fi
mkdir -p "$mountpoint"
mountpoint=$(cd "$mountpoint" && pwd -P)
s3mount_pid=
keep_workdir=0

# shellcheck disable=SC2317 # invoked through trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    echo >&2
    s3m_log "cleaning up"
    if s3m_is_mounted "$mountpoint"; then
        echo "    unmounting $mountpoint" >&2
        s3m_unmount "$mountpoint"
    fi
    if [ -n "$s3mount_pid" ]; then
        s3m_stop_pid "$s3mount_pid" 10
    fi
    if s3m_is_mounted "$mountpoint"; then
        s3m_warn "$mountpoint is still mounted; run: fusermount3 -u '$mountpoint'"
        keep_workdir=1
    fi
    if [ -n "$S3M_MOTO_PID" ]; then
        echo "    stopping moto_server (pid $S3M_MOTO_PID)" >&2
        s3m_stop_pid "$S3M_MOTO_PID" 5
    fi
    if [ "$keep_workdir" -eq 1 ] || [ "$rc" -ne 0 ]; then
        echo "    logs kept in $workdir" >&2
    else
        rm -rf -- "$workdir" # never reached while anything is mounted below it
    fi
    exit "$rc"
}
# Ctrl-C (or SIGTERM) while the demo waits is the normal way to stop it: exit 0 then.
waiting=0
# shellcheck disable=SC2317 # invoked through trap
on_signal() {
    if [ "$waiting" -eq 1 ]; then
        exit 0
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

port=$(s3m_free_port)
endpoint=http://127.0.0.1:$port
s3m_log "starting moto_server on $endpoint (log: $workdir/moto.log)"
s3m_start_moto "$port" "$workdir/moto.log"

s3m_log "creating bucket $bucket with demo objects"
"$S3M_PYTHON" - "$endpoint" "$bucket" "$large_mib" "$workdir" <<'PY'
import hashlib, io, os, sys
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

endpoint, bucket, large_mib, workdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s3 = boto3.client(
    "s3", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id="test", aws_secret_access_key="test",
    config=Config(s3={"addressing_style": "path"}),
)
s3.create_bucket(Bucket=bucket)

def put(key, body, **kw):
    s3.put_object(Bucket=bucket, Key=key, Body=body, **kw)
    print(f"    s3://{bucket}/{key} ({len(body)} bytes)")

put("README.txt", b"Hello from s3mount!\nThis file lives in a bucket, and you are reading it through FUSE.\n",
    ContentType="text/plain")
put("docs/guide.md", b"# Guide\n\nEvery `/` in a key becomes a directory.\n", ContentType="text/markdown")
put("docs/api/reference.md", b"# API reference\n\nNested two levels down.\n", ContentType="text/markdown")
put("photos/2024/summer/beach.jpg", os.urandom(200 * 1024), ContentType="image/jpeg")
put("photos/2024/winter/snow.jpg", os.urandom(150 * 1024), ContentType="image/jpeg")
put("logs/", b"", ContentType="application/x-directory")  # an empty directory marker
put("reports/2024-q1.csv", b"month,revenue\njan,100\nfeb,120\nmar,135\n", ContentType="text/csv",
    Metadata={"author": "alice", "department": "finance"},
    Tagging="project=demo&classification=internal")
put("reports/2024-q2.csv", b"month,revenue\napr,140\nmay,150\njun,160\n", ContentType="text/csv",
    Metadata={"author": "bob"}, Tagging="project=demo&status=draft")

large = os.urandom(large_mib * 1024 * 1024)
s3.upload_fileobj(
    io.BytesIO(large), bucket, "data/large.bin",
    Config=TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024),
)
print(f"    s3://{bucket}/data/large.bin ({len(large)} bytes, multipart upload)")
with open(os.path.join(workdir, "large.sha256"), "w") as f:
    f.write(hashlib.sha256(large).hexdigest())
PY

s3m_log "mounting s3://$bucket at $mountpoint"
echo "    $s3mount_bin --foreground $bucket $mountpoint --endpoint-url $endpoint --force-path-style --region us-east-1" >&2
"$s3mount_bin" --foreground "$bucket" "$mountpoint" \
    --endpoint-url "$endpoint" --force-path-style --region us-east-1 \
    </dev/null >"$workdir/s3mount.log" 2>&1 &
s3mount_pid=$!
if ! s3m_wait_mounted "$mountpoint" "$s3mount_pid" 20; then
    keep_workdir=1
    echo "---- s3mount log ----" >&2
    cat "$workdir/s3mount.log" >&2
    s3m_die "s3mount did not mount $mountpoint (log above, kept in $workdir/s3mount.log)"
fi

show() {
    printf '\n\033[1m$ %s\033[0m\n' "$*"
    "$@" || echo "(exit code $?)"
}
cd "$mountpoint"
show ls -lR .
show cat README.txt
show getfattr -d reports/2024-q1.csv
if [ -z "$(getfattr -d reports/2024-q1.csv 2>/dev/null)" ]; then
    echo "(no user.* extended attributes shown)"
fi
printf '\n\033[1m$ sha256sum data/large.bin\033[0m\n'
start=$(date +%s.%N)
sum=$(sha256sum data/large.bin | cut -d' ' -f1)
end=$(date +%s.%N)
echo "$sum  data/large.bin"
if [ "$sum" = "$(cat "$workdir/large.sha256")" ]; then
    "$S3M_PYTHON" -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'matches the uploaded object ({int(sys.argv[3])} MiB in {s:.2f} s, {int(sys.argv[3])/s:.0f} MiB/s)')" "$start" "$end" "$large_mib"
else
    echo "MISMATCH: the uploaded object had sha256 $(cat "$workdir/large.sha256")"
fi
cd "$S3M_ROOT"

cat <<MSG

======================================================================
 s3://$bucket is mounted at:
     $mountpoint
 S3 endpoint (moto_server, in memory): $endpoint
 s3mount log: $workdir/s3mount.log    moto log: $workdir/moto.log
MSG
if [ $wait_for_ctrl_c -eq 0 ]; then
    echo " --no-wait: unmounting, stopping moto and removing $workdir now"
    echo "======================================================================"
    exit 0
fi
cat <<MSG
 Look around in another terminal, e.g.:  ls -l $mountpoint
 To stop: press Ctrl-C here (unmounts, stops moto, removes temp files),
          or run: fusermount3 -u $mountpoint
======================================================================
MSG
waiting=1
set +e
wait "$s3mount_pid"
rc=$?
set -e
s3mount_pid=
echo "s3mount exited with status $rc" >&2
exit "$rc"
