"""Wall-clock timing shared by the benchmark scripts, and the name of the CPU they ran on."""
import platform
import time
from pathlib import Path

import numpy as np


def best_time(function, repeat):
    """Call ``function()`` ``repeat`` times; return the best and the median wall time (seconds)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))


def cpu_name():
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
