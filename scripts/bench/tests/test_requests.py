from bench.chart import relative_speed
from bench.mounts import cached_blocks
from bench.results import Row
from bench.server import counts, kind, summarize


def test_kind_tells_list_from_object_get():
    assert kind("GET", "/bucket?list-type=2&prefix=a%2F&delimiter=%2F") == "LIST"
    assert kind("GET", "/bucket/") == "LIST"
    assert kind("GET", "/bucket?location") == "GET"
    assert kind("GET", "/bucket/big/obj") == "GET"
    assert kind("PATCH", "/bucket/x") == "other"
    assert kind("PUT", "/bucket/x", copy=True) == "COPY"
    assert kind("PUT", "/bucket/x") == "PUT"
    assert kind("GET", "/bucket/big/obj?tagging") == "TAGS"
    assert kind("PUT", "/bucket/big/obj?tagging") == "TAGS"


def test_counts_tell_copies_from_data_puts_and_sum_bytes():
    lines = [
        "GET 200 /b?list-type=2 - 2.00 - 1 -",
        "GET 206 /b/big/obj bytes=0-262143 4.00 - 2 -",
        "GET 200 /b/big/obj - 40.00 - 3 -",
        "HEAD 200 /b/big/obj - 1.00 - 4 -",
        "PUT 200 /b/cp/x - 900.00 - 5 copy",
        "PUT 200 /b/wr/x - 10.00 8192 6 -",
        "PUT 200 /b/old/x - 10.00 100 7",  # a line of the older format: no copy field
        "truncated",
    ]
    c = counts(lines)
    assert (c["LIST"], c["GET"], c["HEAD"], c["PUT"], c["COPY"]) == (1, 2, 1, 2, 1)
    assert (c["PUT bytes"], c["GET bytes"], c["GET whole"]) == (8292, 262144, 1)
    assert counts([])["GET"] == 0
    assert summarize(lines[4:6]) == "2 (1 PUT ~10.0 ms (avg 8 KiB), 1 COPY ~900.0 ms)"


def test_summarize_counts_kinds_times_and_sizes():
    lines = [
        "GET 200 /b?list-type=2 - 2.00 - 1",
        "GET 206 /b/big/obj bytes=0-262143 4.00 - 2",
        "GET 206 /b/big/obj bytes=262144-524287 6.00 - 3",
        "PUT 200 /b/wr/x - 10.00 8192 4",
        "HEAD 200 /b/big/obj - 1.00 - 5",
        "truncated",
    ]
    assert summarize(lines) == (
        "5 (1 LIST ~2.0 ms, 2 GET ~5.0 ms (2 ranged, avg 256 KiB), 1 HEAD ~1.0 ms, 1 PUT ~10.0 ms (avg 8 KiB))"
    )
    assert summarize([]) == "0"


def test_relative_speed_reads_higher_is_faster_for_every_unit():
    rate = Row("r", "MiB/s", "", "", cells={"curl": 800.0, "s3m": 400.0})
    time = Row("t", "s", "", "", cells={"curl": 1.0, "s3m": 2.0, "s3fs": 0.5})
    assert relative_speed(rate, "s3m") == 0.5
    assert relative_speed(time, "s3m") == 0.5
    assert relative_speed(time, "s3fs") == 2.0
    assert relative_speed(time, "base") is None


def test_cached_blocks_reads_the_last_opened_line():
    log = (
        "2026-12-06T21:19:44Z  INFO s3mount::data::disk_cache: disk cache opened dir=/c blocks=0 held=0 "
        "max_bytes=9133365200 temp_removed=0\n"
        "2026-12-06T21:19:47Z  INFO s3mount::data::disk_cache: disk cache opened dir=/c blocks=3955 "
        "held=1037262030 max_bytes=9005543000 temp_removed=0\n"
    )
    assert cached_blocks(log) == 3955
    assert cached_blocks("mounted\n") is None
