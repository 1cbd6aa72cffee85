import stat
from types import SimpleNamespace

from bench.core import Bench
from bench.measure import ls_attrs
from bench.report import ratios_table
from bench.results import Results, Row
from bench.workloads.listing import check, s3fs_headers, sample


def test_half_of_the_objects_carry_s3fs_headers():
    h = s3fs_headers(0)
    assert h == {"mode": str(stat.S_IFREG | 0o640), "uid": "0", "gid": "0", "mtime": "1500000000"}
    assert s3fs_headers(1) is None
    assert s3fs_headers(2)["mode"] == str(stat.S_IFREG | 0o600)


def test_sample_alternates_objects_with_and_without_headers():
    for n in (40, 1000, 10000):
        idx = sample(n)
        assert len(idx) == 20 and all(0 <= i < n for i in idx)
        assert sum(1 for i in idx if s3fs_headers(i)) == 10


class _Bench(SimpleNamespace):
    def fail(self, msg):
        self.failures.append(msg)


def _bench(tmp_path, listing: str, want) -> _Bench:
    (tmp_path / "ls.out").write_text(listing)
    return _Bench(work=tmp_path, list_expect=want, failures=[], res=Results())


def test_ls_attrs_and_check_compare_mode_and_mtime(tmp_path):
    out = (
        "total 2\n"
        "-rw-r----- 1 root root 128 1500000000 f000000\n"
        "-rw-r--r-- 1 1000 1000 128 1796582212 f000001\n"
        "-rw-r--r-- 1 root root 128 1796582212 f000002\n"
    )
    want = {
        "f000000": ("-rw-r-----", 1500000000),
        "f000001": (None, 1796582212),
        "f000002": ("-rw-------", 1500000002),
    }
    b = _bench(tmp_path, out, want)
    assert ls_attrs(b)["f000001"] == ("-rw-r--r--", 1796582212)
    line = check(b, "(a) s3mount", strict=True)
    assert line.startswith("1/2 with headers show the stored mode and mtime, 1/1 without")
    assert len(b.failures) == 1 and "f000002" in b.failures[0]
    assert b.res.warnings == ["(a) s3mount: ls -l showed other attributes than stored for 1 of 3 sampled"]
    b2 = _bench(tmp_path, out, want)
    check(b2, "(c) s3mount", strict=False)
    assert b2.failures == [] and b2.res.warnings == []


def test_vs_base_is_the_median_of_the_per_run_ratios():
    row = Row("ls", "s", "ls", "ls", cells={"curl": 1.0, "s3m": 2.0, "base": 4.0})
    Bench.vs_base(row, {"s3m": [1.0, 2.0, None, 9.0], "base": [2.0, 2.0, 5.0, 3.0]})
    assert row.vs_base == 1.0  # ratios 0.5, 1.0, (none), 3.0
    res = Results(rows=[row])
    assert ratios_table(res, baseline=True)[2].split(" | ")[8] == "1.00"
    row.vs_base = None  # not paired: the ratio of the medians
    assert ratios_table(res, baseline=True)[2].split(" | ")[8] == "0.50"
