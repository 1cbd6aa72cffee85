from bench.stats import fmt_list, fmt_num, fmt_ratio, max_of, median, mib_per_s, ratio


def test_median_odd_even_and_missing_values():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert median([None, 5.0, "n/a", None]) == 5.0
    assert median([]) is None
    assert median([None, "not run"]) is None


def test_max_of_skips_missing_values():
    assert max_of([None, 3, 7, "n/a"]) == 7
    assert fmt_num(max_of([36, None])) == "36"
    assert max_of([None]) is None


def test_ratio_needs_two_positive_numbers():
    assert ratio(538, 850) == 538 / 850
    assert ratio(None, 2) is None
    assert ratio(3, 0) is None
    assert ratio("not run", 2) is None


def test_number_format_matches_the_old_awk():
    assert fmt_num(3349.4) == "3349"
    assert fmt_num(100) == "100"
    assert fmt_num(46.63) == "46.6"
    assert fmt_num(2.154) == "2.15"
    assert fmt_num(0.9531) == "0.953"
    assert fmt_num(0.5) == "0.500"
    assert fmt_num(36) == "36"
    assert fmt_num(None) == "n/a"
    assert fmt_num("not run") == "not run"


def test_ratio_format():
    assert fmt_ratio(0.63294) == "0.63"
    assert fmt_ratio(10.975) == "10.97" or fmt_ratio(10.975) == "10.98"
    assert fmt_ratio(None) == "n/a"


def test_throughput_and_run_lists():
    assert mib_per_s(1 << 30, 2.0) == 512.0
    assert mib_per_s(1 << 30, 0) is None
    assert fmt_list([538.2, None, 12.34]) == "538 / n/a / 12.3"
    assert fmt_list([]) == "n/a"
