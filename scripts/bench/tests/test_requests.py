from bench.chart import relative_speed
from bench.results import Row
from bench.server import kind, summarize


def test_kind_tells_list_from_object_get():
    assert kind("GET", "/bucket?list-type=2&prefix=a%2F&delimiter=%2F") == "LIST"
    assert kind("GET", "/bucket/") == "LIST"
    assert kind("GET", "/bucket?location") == "GET"
    assert kind("GET", "/bucket/big/obj") == "GET"
    assert kind("PATCH", "/bucket/x") == "other"


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
