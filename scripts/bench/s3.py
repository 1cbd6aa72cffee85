"""boto3 calls against the bench bucket: seeding, presigned URLs, the server baselines (LIST,
random ranged GETs, PutObject loop, CopyObject) and the checks of what the mounts uploaded."""

import concurrent.futures as cf
import http.client
import os
import random
import time
import urllib.parse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

MIB = 1 << 20


class S3:
    def __init__(self, endpoint: str, bucket: str):
        self.bucket = bucket
        self.c = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="S3RVER",
            aws_secret_access_key="S3RVER",
            config=Config(
                s3={"addressing_style": "path"},
                max_pool_connections=64,
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )

    def mkbucket(self) -> None:
        self.c.create_bucket(Bucket=self.bucket)

    def upload(self, path: str, key: str, concurrency: int = 4) -> None:
        cfg = TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB, max_concurrency=concurrency)
        self.c.upload_file(path, self.bucket, key, Config=cfg)

    def upload_many(self, pairs: list[tuple[str, str]]) -> None:
        """(path, key) pairs, four at a time."""
        with cf.ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda pk: self.upload(pk[0], pk[1], 2), pairs))

    def keys(self, prefix: str) -> list[str]:
        pages = self.c.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for p in pages for o in p.get("Contents", [])]

    def seed(self, prefix: str, count: int, size: int, headers=None) -> None:
        """count objects PREFIX/fNNNNNN of size random bytes, checked by a LIST; headers(i) gives
        object i's user metadata (x-amz-meta-*) or None."""

        def put(i):
            meta = headers(i) if headers else None
            kw = {"Metadata": meta} if meta else {}
            self.c.put_object(Bucket=self.bucket, Key=f"{prefix}/f{i:06d}", Body=os.urandom(size), **kw)

        with cf.ThreadPoolExecutor(32) as ex:
            list(ex.map(put, range(count)))
        got = len(self.keys(prefix + "/"))
        if got != count:
            raise RuntimeError(f"seeded {count} objects under {prefix}/ but LIST shows {got}")

    def mtime(self, key: str) -> int:
        """The object's Last-Modified, in whole seconds since the epoch (a HEAD)."""
        return int(self.c.head_object(Bucket=self.bucket, Key=key)["LastModified"].timestamp())

    def presign(self, key: str, method: str = "get_object") -> str:
        return self.c.generate_presigned_url(method, Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=7 * 86400)

    def copy_timed(self, src: str, dst: str) -> float:
        """Seconds of one CopyObject src -> dst (the whole object copied by the server)."""
        self.c.head_bucket(Bucket=self.bucket)  # open the connection first
        t0 = time.perf_counter()
        self.c.copy_object(Bucket=self.bucket, Key=dst, CopySource={"Bucket": self.bucket, "Key": src})
        return time.perf_counter() - t0

    def curl_config(self, prefix: str, count: int) -> str:
        """A curl -K config fetching every PREFIX/fNNNNNN to /dev/null."""
        return "".join(f'url = "{self.presign(f"{prefix}/f{i:06d}")}"\noutput = "/dev/null"\n' for i in range(count))

    def list_timed(self, prefix: str) -> tuple[float, int, int]:
        """(seconds, pages, entries) of a paginated LIST with Delimiter='/'."""
        t0 = time.perf_counter()
        pages = entries = 0
        kw = {"Bucket": self.bucket, "Prefix": prefix + "/", "Delimiter": "/"}
        while True:
            r = self.c.list_objects_v2(**kw)
            pages += 1
            entries += len(r.get("Contents", [])) + len(r.get("CommonPrefixes", []))
            if not r.get("IsTruncated"):
                break
            kw["ContinuationToken"] = r["NextContinuationToken"]
        return time.perf_counter() - t0, pages, entries

    def random_gets(self, key: str, size: int, bs: int, secs: float) -> float:
        """MiB/s of random ranged GETs of bs bytes on one keep-alive connection for secs."""
        u = urllib.parse.urlsplit(self.presign(key))
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
                raise RuntimeError(f"ranged GET: status {r.status}, {len(body)} bytes")
            total += len(body)
        conn.close()
        return total / (time.perf_counter() - t0) / MIB

    def put(self, key: str, body: bytes = b"") -> None:
        self.c.put_object(Bucket=self.bucket, Key=key, Body=body)

    def delete(self, key: str) -> None:
        self.c.delete_object(Bucket=self.bucket, Key=key)

    def get(self, key: str) -> bytes:
        return self.c.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put_dir(self, prefix: str, d: str) -> float:
        """Seconds to PutObject every file of d, one after another on one connection."""
        names = sorted(os.listdir(d))
        bodies = []
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                bodies.append(f.read())
        self.c.head_bucket(Bucket=self.bucket)  # open the connection first, as a mount has
        t0 = time.perf_counter()
        for n, b in zip(names, bodies, strict=True):
            self.c.put_object(Bucket=self.bucket, Key=f"{prefix}/{n}", Body=b)
        return time.perf_counter() - t0

    def verify_dir(self, prefix: str, d: str) -> str | None:
        """None when every file of d is PREFIX/name with the same bytes, else what differs."""
        names = sorted(os.listdir(d))
        keys = set(self.keys(prefix + "/"))
        want = {f"{prefix}/{n}" for n in names}
        extra = keys - want - {prefix + "/"}
        missing = want - keys

        def same(n):
            with open(os.path.join(d, n), "rb") as f:
                return self.get(f"{prefix}/{n}") == f.read()

        bad = []
        if not missing:
            with cf.ThreadPoolExecutor(16) as ex:
                bad = [n for n, ok in zip(names, ex.map(same, names), strict=True) if not ok]
        if missing or extra or bad:
            return f"{prefix}/: {len(missing)} missing, {len(extra)} unexpected, {len(bad)} with other bytes"
        return None
