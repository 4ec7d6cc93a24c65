"""Wall-clock timing shared by the benchmark scripts."""
import time

import numpy as np


def best_time(function, repeat):
    """Call ``function()`` ``repeat`` times; return the best and the median wall time (seconds)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))
