"""The chart: per workload, each client's speed relative to the server baseline (curl, boto3 or
the aws CLI), so that every bar reads "higher is faster" whatever the row's unit."""

from pathlib import Path

from .results import Results, Row
from .stats import ratio

COLOURS = {"s3fs": "#999999", "s3m": "#1f77b4", "base": "#aec7e8"}
LABELS = {"s3fs": "s3fs", "s3m": "s3mount", "base": "s3mount baseline"}


def relative_speed(row: Row, client: str) -> float | None:
    """client against curl: value/curl for rates, curl/value for times (>1: faster than curl)."""
    if client in row.pair and client != "s3fs":
        p = row.pair[client]
        return p if isinstance(p, float | int) else None
    v, c = row.cells.get(client), row.cells.get("curl")
    return ratio(v, c) if row.higher_is_better else ratio(c, v)


def draw(res: Results, path: Path, baseline: bool, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = ["s3fs", "s3m"] + (["base"] if baseline else [])
    rows = [r for r in res.rows if any(relative_speed(r, k) for k in clients)]
    height = 0.8 / len(clients)
    fig, ax = plt.subplots(figsize=(11, 0.3 * len(clients) * len(rows) + 1.6))
    for i, k in enumerate(clients):
        ys = [n + (i - (len(clients) - 1) / 2) * height for n in range(len(rows))]
        vals = [relative_speed(r, k) or 0 for r in rows]
        ax.barh(ys, vals, height=height, color=COLOURS[k], label=LABELS[k])
        for y, v in zip(ys, vals, strict=True):
            if v:
                ax.text(v * 1.03, y, f"{v:.2f}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [r.short for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed relative to the server baseline (curl / boto3 / aws CLI = 1; higher is faster; log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
