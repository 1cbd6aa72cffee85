"""Time to the first byte of a file: open + read of 1 byte, timed inside the process.

Prints "TOTAL OPEN READ" in milliseconds (interpreter start-up excluded).

    python ttfb_probe.py FILE
"""

import os
import sys
import time


def main(path):
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    t1 = time.perf_counter()
    b = os.read(fd, 1)
    t2 = time.perf_counter()
    os.close(fd)
    if len(b) != 1:
        sys.exit(f"read returned {len(b)} bytes")
    print(f"{(t2 - t0) * 1000:.2f} {(t1 - t0) * 1000:.2f} {(t2 - t1) * 1000:.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
