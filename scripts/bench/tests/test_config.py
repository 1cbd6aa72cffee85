from pathlib import Path

from bench.config import ROOT, load, repo_path


def test_relative_output_paths_are_taken_from_the_repository_root(monkeypatch):
    assert repo_path("docs/x.md") == ROOT / "docs/x.md"
    assert repo_path("/tmp/x.md") == Path("/tmp/x.md")
    monkeypatch.setenv("BENCH_RESULTS", "docs/bench-caches.md")
    monkeypatch.delenv("BENCH_CHART", raising=False)
    cfg = load(quick=True)
    assert cfg.results_file == ROOT / "docs/bench-caches.md"
    assert cfg.chart_file == ROOT / "docs/bench.png"


def test_the_new_workloads_are_selectable(monkeypatch):
    monkeypatch.setenv("BENCH_WORKLOADS", "diskcache remount_listing servercopy")
    assert load(quick=True).workloads == ["diskcache", "remount_listing", "servercopy"]
