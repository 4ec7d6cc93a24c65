"""Would batching images of equal size through the AlexNet trunk make ``predict`` faster? Milliseconds per image of
conv1 ... conv5 for batches of 1, 2, 4 and 8 inputs of 300 x 400 (an OSIE image after the paper's downsampling),
on 1 and 2 threads, each thread count in its own process.

    python benchmarks/bench_batch.py [--data DIR] [--repeat 5] [--write]

The graph is the network's own (:meth:`repro.network.Network.outputs`), compiled for a whole batch. ``--write``
stores the table in ``benchmarks/results/batch.md``.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from markdown_table import report  # noqa: E402  (beside this script)
from timing import cpu_name  # noqa: E402

BATCHES = (1, 2, 4, 8)


def child(data, repeat):
    """Median ms per image of conv5 for each batch size: ``{batch: ms}``."""
    from repro.network import Network            # first: it configures Theano (repro.backend)
    from repro.paths import find_weights

    import theano

    network = Network(*find_weights("bvlc_alexnet", None, data), padding="full", last_layer="pool5")
    conv5 = theano.function([network._input], network.outputs()[network._known("conv5")])
    rng = np.random.RandomState(0)
    found = {}
    for batch in BATCHES:
        inputs = (rng.randn(batch, 3, 300, 400) * 50).astype(np.float32)
        conv5(inputs)                                                  # warm-up
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            conv5(inputs)
            times.append(time.perf_counter() - start)
        found[batch] = 1e3 * float(np.median(times)) / batch
    return found


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("DEEPGAZE_DATA"), help="data directory (default: DEEPGAZE_DATA)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--write", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.data, args.repeat)))
        return 0
    load = os.getloadavg()[0]
    rows = []
    for threads in (1, 2):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, __file__, "--child", "--repeat", str(args.repeat)]
                             + (["--data", args.data] if args.data else []), env=env, capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        ms = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append([str(threads)] + [f"{ms[str(b)]:.1f} ({ms[str(b)] / ms['1']:.2f})" for b in BATCHES])
    intro = (f"{cpu_name()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, load average {load:.1f} before the "
             f"run. Milliseconds per image (relative to a batch of 1) of conv1 ... conv5 for inputs of 3 x 300 x 400, "
             f"median of {args.repeat}. Command: `python benchmarks/bench_batch.py --write`.")
    report("Batches through the AlexNet trunk", intro, ["threads"] + [f"batch of {b}" for b in BATCHES], rows,
           "batch", args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
