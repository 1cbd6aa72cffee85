"""A synthetic S3 endpoint for listings too large for s3rver or moto: a bucket whose keys are
generated, never stored. It answers ListObjectsV2 (prefix, delimiter, max-keys, continuation
token, start-after), HeadObject and GetObject (with Range) for its keys, and a 404 for any
other key; it checks no signature. Every request is logged like s3rver_logged.js logs them
(METHOD STATUS URL RANGE MILLISECONDS CONTENT-LENGTH END COPY), so the bench counts requests the
same way for both servers.

    python synthetic_s3.py PORT LOG_FILE

Bucket `synth` holds:
  m/dNNN/fNNNNNN   1,000 directories of 1,000 objects (a million objects)
  w/wN/fNNNNNNN    one directory each of N = 1,000, 10,000 and 100,000 objects
Every object holds 16 bytes (its key's hash), ETag and Last-Modified fixed per key."""

import hashlib
import sys
import time
import urllib.parse
from bisect import bisect_left
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

BUCKET = "synth"
# (prefix of the group, objects, digits of the index): the keys of a group sort by index, and
# the groups are listed in key order.
GROUPS = [(f"m/d{d:03d}/f", 1000, 6) for d in range(1000)] + [
    ("w/w1000/f", 1_000, 7),
    ("w/w10000/f", 10_000, 7),
    ("w/w100000/f", 100_000, 7),
]
GROUPS.sort(key=lambda g: g[0])
SIZE = 16
LAST_MODIFIED = "2026-01-02T03:04:05.000Z"
HTTP_DATE = "Fri, 02 Jan 2026 03:04:05 GMT"


class _Keys:
    """The keys of one group as a sorted sequence, for bisect."""

    def __init__(self, group):
        self.prefix, self.count, self.width = group

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        return f"{self.prefix}{i:0{self.width}d}"


LASTS = [_Keys(g)[g[1] - 1] for g in GROUPS]


def cursor_at_or_after(s: str) -> tuple[int, int] | None:
    """(group, index) of the smallest key >= s."""
    gi = bisect_left(LASTS, s)
    if gi == len(GROUPS):
        return None
    keys = _Keys(GROUPS[gi])
    return gi, bisect_left(keys, s)


def exists(key: str) -> bool:
    c = cursor_at_or_after(key)
    return c is not None and _Keys(GROUPS[c[0]])[c[1]] == key


def list_page(prefix: str, delim: str, after: str | None, max_keys: int):
    """(keys, common prefixes, next token or None) of one ListObjectsV2 page."""
    keys, cps = [], []
    if after is None or after < prefix:
        s = prefix
    elif delim and after.endswith(delim):  # a common prefix: skip everything under it
        s = after[:-1] + chr(ord(after[-1]) + 1)
    else:
        s = after + "\0"
    last = None
    cur = cursor_at_or_after(s)
    while cur is not None:
        gi, i = cur
        k = _Keys(GROUPS[gi])[i]
        if not k.startswith(prefix):
            break
        if len(keys) + len(cps) == max_keys:
            return keys, cps, last
        rest = k[len(prefix) :]
        if delim and delim in rest:
            cp = prefix + rest[: rest.index(delim) + len(delim)]
            cps.append(cp)
            last = cp
            cur = cursor_at_or_after(cp[:-1] + chr(ord(cp[-1]) + 1))
        else:
            keys.append(k)
            last = k
            cur = (gi, i + 1) if i + 1 < GROUPS[gi][1] else (gi + 1, 0) if gi + 1 < len(GROUPS) else None
    return keys, cps, None


def etag(key: str) -> str:
    return '"' + hashlib.md5(key.encode()).hexdigest() + '"'


def body(key: str) -> bytes:
    return hashlib.md5(key.encode()).digest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_file = None

    def log_message(self, *args):  # the request log below replaces http.server's
        pass

    def _send(self, status: int, data: bytes = b"", headers: dict | None = None, head: bool = False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)
        ms = (time.perf_counter() - self._t0) * 1000
        rng = self.headers.get("Range") or "-"
        line = f"{self.command} {status} {self.path} {rng} {ms:.2f} - {int(time.time() * 1000)} -\n"
        Handler.log_file.write(line)

    def _error(self, status: int, code: str, head: bool = False):
        xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
        self._send(status, xml.encode(), {"Content-Type": "application/xml"}, head)

    def _split(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.lstrip("/").split("/", 1)
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        return parts[0], key, urllib.parse.parse_qs(url.query, keep_blank_values=True)

    def do_HEAD(self):
        self._t0 = time.perf_counter()
        bucket, key, _ = self._split()
        if bucket != BUCKET:
            return self._error(404, "NoSuchBucket", head=True)
        if not key:
            return self._send(200, b"", {}, head=True)
        if not exists(key):
            return self._error(404, "NoSuchKey", head=True)
        self._send(200, body(key), self._object_headers(key), head=True)

    def _object_headers(self, key: str) -> dict:
        return {"ETag": etag(key), "Last-Modified": HTTP_DATE, "Content-Type": "application/octet-stream"}

    def do_GET(self):
        self._t0 = time.perf_counter()
        bucket, key, q = self._split()
        if bucket != BUCKET:
            return self._error(404, "NoSuchBucket")
        if not key:
            if "location" in q:
                xml = "<?xml version='1.0' encoding='UTF-8'?><LocationConstraint/>"
                return self._send(200, xml.encode(), {"Content-Type": "application/xml"})
            if q.get("list-type") == ["2"]:
                return self._list(q)
            return self._error(501, "NotImplemented")
        q.pop("x-id", None)  # the SDK names its operation
        if q:  # tagging, acl, attributes...: none of them here
            return self._error(404, "NoSuchKey") if not exists(key) else self._error(501, "NotImplemented")
        if not exists(key):
            return self._error(404, "NoSuchKey")
        data, status, headers = body(key), 200, self._object_headers(key)
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end = int(a), min(int(b) if b else SIZE - 1, SIZE - 1)
            if start >= SIZE:
                return self._error(416, "InvalidRange")
            data, status = data[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{SIZE}"
        self._send(status, data, headers)

    def _list(self, q):
        one = lambda name, default="": q.get(name, [default])[0]  # noqa: E731
        prefix, delim = one("prefix"), one("delimiter")
        max_keys = min(int(one("max-keys", "1000")), 1000)
        token = one("continuation-token") or None
        after = token or one("start-after") or None
        keys, cps, nxt = list_page(prefix, delim, after, max_keys)
        out = [
            "<?xml version='1.0' encoding='UTF-8'?>",
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
            f"<Name>{BUCKET}</Name><Prefix>{escape(prefix)}</Prefix><MaxKeys>{max_keys}</MaxKeys>",
            f"<KeyCount>{len(keys) + len(cps)}</KeyCount>",
            f"<IsTruncated>{'true' if nxt else 'false'}</IsTruncated>",
        ]
        if delim:
            out.append(f"<Delimiter>{escape(delim)}</Delimiter>")
        if token:
            out.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
        if nxt:
            out.append(f"<NextContinuationToken>{escape(nxt)}</NextContinuationToken>")
        for k in keys:
            out.append(
                f"<Contents><Key>{escape(k)}</Key><LastModified>{LAST_MODIFIED}</LastModified>"
                f"<ETag>{escape(etag(k))}</ETag><Size>{SIZE}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        for cp in cps:
            out.append(f"<CommonPrefixes><Prefix>{escape(cp)}</Prefix></CommonPrefixes>")
        out.append("</ListBucketResult>")
        self._send(200, "".join(out).encode(), {"Content-Type": "application/xml"})


class Server(ThreadingHTTPServer):
    # s3mount opens dozens of connections at once (stat-ahead): the default backlog of 5 made
    # some of them wait for a SYN retry, seconds each.
    request_queue_size = 1024
    daemon_threads = True


def main() -> None:
    port, log = int(sys.argv[1]), sys.argv[2]
    Handler.log_file = open(log, "a", buffering=1)  # noqa: SIM115 - open for the server's life
    server = Server(("127.0.0.1", port), Handler)
    print(f"synthetic S3 listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
