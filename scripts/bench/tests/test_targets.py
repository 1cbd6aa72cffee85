from bench.targets import (
    MET,
    NA,
    NOT_MET,
    combine,
    per_run_ratios,
    ratio_part,
    rss_part,
    share_part,
    target_line,
    verdict,
    zero_part,
)
from bench.workloads.diskcache import free_line


def test_per_run_ratios_pair_run_r_with_run_r():
    assert per_run_ratios([900.0, None, 600.0], [300.0, 200.0, 0.0]) == [3.0, None, None]


def test_verdict_bounds_both_ways():
    assert verdict(3.0, 3, at_least=True) == MET
    assert verdict(2.99, 3, at_least=True) == NOT_MET
    assert verdict(1.5, 1.5, at_least=False) == MET
    assert verdict(1.51, 1.5, at_least=False) == NOT_MET
    assert verdict(None, 3, at_least=True) == NA
    assert verdict("not run", 3, at_least=True) == NA


def test_combine_missed_beats_unmeasured_beats_met():
    assert combine([MET, MET]) == MET
    assert combine([MET, NA]) == NA
    assert combine([NA, NOT_MET, MET]) == NOT_MET
    assert combine([]) == NA


def test_parts_and_the_line():
    text, v = ratio_part("re-read/cold", [4.0, 2.0, 5.0], 3, True)
    assert text == "re-read/cold 4.00× (runs 4.00 / 2.00 / 5.00; target ≥ 3×)" and v == MET
    assert ratio_part("ls/LIST", [1.6, None], 1.5, False)[1] == NOT_MET
    assert zero_part("GETs", [0, 0, None]) == ("GETs 0 / 0 / n/a (target 0)", MET)
    assert zero_part("HEADs", [0, 3])[1] == NOT_MET
    assert zero_part("HEADs", [None])[1] == NA
    assert rss_part([180, None, 255]) == ("peak RSS 255 MiB (target < 256 MiB)", MET)
    assert rss_part([256])[1] == NOT_MET
    assert rss_part([None]) == ("peak RSS n/a (target < 256 MiB)", NA)
    assert share_part("bytes GET", [0, 262144], 1 << 30, 0.01)[1] == MET
    assert share_part("bytes GET", [1 << 30], 1 << 30, 0.01)[1] == NOT_MET
    line = target_line([ratio_part("a", [4.0], 3, True), zero_part("GETs", [0, 1])])
    assert line == "a 4.00× (runs 4.00; target ≥ 3×); GETs 0 / 1 (target 0): NOT met"


def test_free_line_names_the_pause_threshold(tmp_path):
    line = free_line(tmp_path)
    assert f"under {tmp_path}" in line and "the cache pauses below" in line
