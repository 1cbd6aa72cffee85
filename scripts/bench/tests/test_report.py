import pytest

from bench.report import growth_table, md_table, ratios_table, render, requests_table
from bench.results import Growth, Results


def sample() -> Results:
    res = Results()
    seq = res.row("seq8", "MiB/s", "seq read cold — curl: 8 ranged GETs", "seq read")
    seq.cells.update(curl=850.0, s3fs=462.0, s3m=538.0, base=500.0)
    seq.rss.update(s3m=173, base=180)
    pair = res.row("seqpair", "MiB/s", "seq read, in pairs", "pairs")
    pair.cells.update(curl=677.0, s3m=552.0)
    pair.pair["s3m"] = 0.70
    ls = res.row("ls50000", "s", "ls -l of 50000 objects", "ls")
    ls.cells.update(curl=30.8, s3fs="not run", s3m=32.4)
    req = res.req("seq", "seq read, one read")
    req.cells.update(s3fs="106 (103 GET)", s3m="136 (134 GET)")
    res.growth[50000] = Growth(50000, pages=50, runs=1, cells={"curl": 30.8, "s3m": 32.4, "s3fs": "not run"})
    return res


def test_md_table_shape_and_alignment():
    lines = md_table(["a", "b"], "lr", [["x", "1"]])
    assert lines == ["| a | b |", "|---|---:|", "| x | 1 |"]
    with pytest.raises(ValueError):
        md_table(["a", "b"], "l", [])
    with pytest.raises(ValueError):
        md_table(["a", "b"], "lr", [["only one"]])


def test_ratios_table_without_baseline_keeps_the_old_columns():
    lines = ratios_table(sample(), baseline=False)
    assert lines[0] == (
        "| workload | unit | curl/server | s3fs | s3mount | s3mount/curl | s3mount/s3fs | s3mount peak RSS |"
    )
    assert lines[2] == "| seq read cold — curl: 8 ranged GETs | MiB/s | 850 | 462 | 538 | 0.63 | 1.16 | 173 MiB |"
    # A pairs row shows the median of its per-pair ratios, not the ratio of the medians.
    assert lines[3] == "| seq read, in pairs | MiB/s | 677 | n/a | 552 | 0.70 | n/a | n/a |"
    assert lines[4] == "| ls -l of 50000 objects | s | 30.8 | not run | 32.4 | 1.05 | n/a | n/a |"


def test_ratios_table_with_baseline_adds_its_columns():
    lines = ratios_table(sample(), baseline=True)
    assert "| baseline |" in lines[0] and "s3mount/baseline" in lines[0] and "baseline peak RSS" in lines[0]
    assert lines[2] == (
        "| seq read cold — curl: 8 ranged GETs | MiB/s | 850 | 462 | 538 | 500 | 0.63 | 1.16 | 1.08 "
        "| 173 MiB | 180 MiB |"
    )


def test_requests_and_growth_tables():
    res = sample()
    assert requests_table(res, False)[2] == "| seq read, one read | — | 106 (103 GET) | 136 (134 GET) |"
    assert requests_table(res, True)[2].endswith("| 136 (134 GET) | n/a |")
    assert growth_table(res, False)[2] == "| 50000 | 50 | 30.8 s | 32.4 s | 1.05 | not run | 616 | 648 | 1 |"


def test_render_has_every_part():
    res = sample()
    res.facts["total time"] = "12 s"
    res.warnings.append("something differed")
    res.notes.append("curl 1 GET: 527 / 530")
    text = render(res, ["# title"], baseline=False, chart="bench.png")
    assert text.startswith("# title\n")
    assert "![s3mount against curl and s3fs](bench.png)" in text
    assert "- total time: 12 s" in text
    assert "- WARNING: something differed" in text
    assert "- curl 1 GET: 527 / 530" in text
