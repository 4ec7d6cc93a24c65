"""Time AlexNet's convolutional trunk (conv1 ... pool5) in Theano against OpenCV's Caffe net.

Input: a 1024 x 768 image downsampled by 2 (the paper's setting), i.e. a (1, 3, 384, 512)
network input. Both implementations run in the same process on the same input; each
is timed ``--repeat`` times (interleaved) and the best time counts. Throughput is the
convolutions' multiply-adds (x 2 FLOP) per second, also as a fraction of the machine's
peak (``--peak``, default 166 GFLOP/s: 2 cores, fp32).

Theano's convolutions are im2col + GEMM, so the BLAS behind ``blas.ldflags`` decides the
speed. Each configuration runs in a fresh subprocess:

* ``scipy-openblas32``: the project's default (``repro.backend.blas_ldflags``), a current
  OpenBLAS that picks the CPU's kernel itself, with its default thread count (one per
  core) and with ``OPENBLAS_NUM_THREADS=1`` (faster when other work shares the cores:
  a multi-threaded GEMM waits for its slowest thread);
* ``numpy``: ``THEANO_FLAGS=blas.ldflags=`` (NumPy 1.23.5's bundled OpenBLAS 0.3.20 through
  its C-API), as installed, which falls back to a slow generic kernel on recent CPUs, and
  with ``OPENBLAS_CORETYPE=SkylakeX`` (AVX-512) or ``Haswell`` (AVX2) when the CPU has them.

Usage::

    python benchmarks/bench_network.py [--data DIR] [--repeat 10] [--write benchmarks/results/network.md]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import cpu_name  # noqa: E402  (beside this script)
ALEXNET = "weights/bvlc_alexnet/deploy.prototxt"
CAFFEMODEL = "weights/bvlc_alexnet/bvlc_alexnet_conv_q8.v2.caffemodel"


def conv_flops(net, input_hw):
    """2 x multiply-adds of every convolution for an input of ``input_hw`` pixels."""
    shapes = net.output_shapes(input_hw)
    total = 0
    for layer in net.model.layers:
        if layer.type == "Convolution":
            channels_out, h, w = shapes[layer.name]
            weights = net.model.blobs[layer.name][0]
            total += 2 * channels_out * weights[0].size * h * w
    return total


def measure(data, padding, repeat):
    """One configuration in this process; returns a dict of timings."""
    import cv2
    import numpy as np

    from repro import caffe
    from repro.network import ALEXNET_LAYERS, Network, preprocess
    from timing import best_time  # beside this script

    cv2.setNumThreads(blas_threads())           # the same number of threads as Theano's BLAS
    rng = np.random.RandomState(0)
    image = preprocess(rng.randint(0, 256, (768, 1024, 3)).astype(np.uint8), downsample=2)
    net = Network(data / ALEXNET, data / CAFFEMODEL, padding=padding, last_layer="pool5")
    pool5 = net.function(["pool5"])
    every = net.function(ALEXNET_LAYERS)
    text = caffe.rewrite_prototxt(data / ALEXNET, "pool5", full_padding=padding == "full")
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as cut:
        cut.write(text)
    opencv = cv2.dnn.readNetFromCaffe(cut.name, str(data / CAFFEMODEL))
    os.unlink(cut.name)
    opencv.setInput(image)

    def run_opencv():
        opencv.setInput(image)
        return opencv.forward("pool5")

    reference = run_opencv()[0]
    ours = pool5(image)[0]
    error = float(np.abs(ours - reference).max() / np.abs(reference).max())
    for f in (lambda: pool5(image), lambda: every(image), run_opencv):
        f()  # warm up
    best = {"theano_pool5": [], "theano_15": [], "opencv": []}
    for _ in range(repeat):
        best["theano_pool5"].append(best_time(lambda: pool5(image), 1)[0])
        best["theano_15"].append(best_time(lambda: every(image), 1)[0])
        best["opencv"].append(best_time(run_opencv, 1)[0])
    row = {key: min(values) for key, values in best.items()}
    row.update(padding=padding, flops=conv_flops(net, image.shape[2:]), error=error,
               blas=blas_name(), opencv_threads=cv2.getNumThreads())
    return row


def blas_threads():
    """The threads Theano's BLAS runs with in this process: ``OPENBLAS_NUM_THREADS``, else one per core."""
    return int(os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count())


def blas_name():
    """Which BLAS Theano's C ops use in this process, with the OpenBLAS kernel."""
    from repro.backend import theano

    threads = f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(default)')}"
    if "scipy_openblas" in theano.config.blas.ldflags:
        import scipy_openblas32

        return f"scipy-openblas32 ({scipy_openblas32.get_openblas_config().split()[-2]} kernel), {threads}"
    if theano.config.blas.ldflags:
        return theano.config.blas.ldflags
    return f"numpy, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(as installed)')}, {threads}"


def cpu_coretypes():
    """OpenBLAS kernels worth trying on this CPU (from /proc/cpuinfo flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []
    return ["SkylakeX"] if "avx512f" in flags else ["Haswell"] if "avx2" in flags else []


def table(rows, peak):
    lines = ["| padding | Theano's BLAS | OpenCV threads | Theano pool5 (ms) | Theano 15 layers (ms) | OpenCV pool5 (ms) "
             "| OpenCV / Theano | Theano GFLOP/s | % of peak | max rel. diff |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gflops = r["flops"] / r["theano_pool5"] / 1e9
        lines.append(f"| {r['padding']} | {r['blas']} | {r['opencv_threads']} | {r['theano_pool5'] * 1e3:.1f} | "
                     f"{r['theano_15'] * 1e3:.1f} | {r['opencv'] * 1e3:.1f} | "
                     f"{r['opencv'] / r['theano_pool5']:.2f} | {gflops:.1f} | {100 * gflops / peak:.0f}% | "
                     f"{r['error']:.1e} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("DEEPGAZE_DATA") or ROOT.parent / "shared/data",
                        help="data directory holding weights/bvlc_alexnet (default: DEEPGAZE_DATA)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--peak", type=float, default=166.0, help="machine peak, GFLOP/s")
    parser.add_argument("--write", type=Path, help="also write the table to this markdown file")
    parser.add_argument("--child", metavar="PADDING", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.data, args.child, args.repeat)))
        return 0

    rows = []
    load = os.getloadavg()
    numpy_blas = {"THEANO_FLAGS": ",".join(filter(None, [os.environ.get("THEANO_FLAGS"), "blas.ldflags="]))}
    configurations = [{}, {"OPENBLAS_NUM_THREADS": "1"}, numpy_blas]
    if "OPENBLAS_CORETYPE" not in os.environ:
        configurations += [dict(numpy_blas, OPENBLAS_CORETYPE=coretype) for coretype in cpu_coretypes()]
    for overrides in configurations:
        env = dict(os.environ, **overrides)
        for padding in ("caffe", "full"):
            out = subprocess.run([sys.executable, __file__, "--child", padding, "--data", str(args.data),
                                  "--repeat", str(args.repeat)], env=env, capture_output=True, text=True,
                                 check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    text = table(rows, args.peak)
    header = (f"AlexNet conv trunk, input (1, 3, 384, 512) (1024 x 768 downsampled by 2), best of "
              f"{args.repeat}; {rows[0]['flops'] / 1e9:.2f} GFLOP (caffe padding); "
              f"OpenCV with as many threads as Theano's BLAS; {cpu_name()}, {os.cpu_count()} cores, peak "
              f"{args.peak:g} GFLOP/s; {time.strftime('%Y-%m-%d', time.gmtime())}; load average before the run "
              f"{load[0]:.1f} (other work on the machine makes timings noisy).\n"
              f"Ratio > 1: Theano faster. Command: `python benchmarks/bench_network.py`.\n")
    print(header)
    print(text)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(f"# Network benchmark\n\n{header}\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
