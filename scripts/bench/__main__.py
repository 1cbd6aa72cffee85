"""Entry point: python -m bench [--quick] (through scripts/bench.sh, which installs what is
missing, builds s3mount and sets BENCH_S3MOUNT_BIN and BENCH_S3RVER_MODULE)."""

import argparse
import signal
import sys

from .config import ConfigError, load
from .runner import main


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench", description="s3mount benchmark (see scripts/bench.sh)")
    p.add_argument("--quick", action="store_true", help="small sizes, one run (a few minutes)")
    return p.parse_args(argv)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def entry() -> int:
    args = parse(sys.argv[1:])
    try:
        cfg = load(args.quick)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so that the mounts and the server are cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)
    return main(cfg)


if __name__ == "__main__":
    sys.exit(entry())
