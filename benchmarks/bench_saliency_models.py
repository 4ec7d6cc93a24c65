"""Speed of the earlier saliency models (repro.saliency_models) on OSIE's 800 x 600 images, one core, and of all their
maps of the 700 images with worker processes.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_saliency_models.py [--data DIR] [--images 10]
        [--repeat 2] [--all --workers 2] [--write]

**Per image**: each model's map of the first ``--images`` OSIE images, ``--repeat`` times (the best and the median
of the per-image mean), in this process, computed (no cache). The goal (issue 27): at most 1 s per image and model
on one core. The peer in the same run, with one thread: OpenCV's spectral residual
(``cv2.saliency.StaticSaliencySpectralResidual``, opencv-contrib, C++), whose time says how fast this machine is.

**All maps** (``--all``): every model's map of all 700 images, on the cells the postprocessing reads
(:meth:`repro.saliency_models.MapStore.cells`, a fresh cache in a temporary folder), spread over ``--workers``
processes, one model after another; the goal: at most 20 minutes with 2 workers. ``--write`` stores the tables in
``benchmarks/results/saliency_models.md``.
"""
import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from repro import experiments as ex
from repro.datasets import load_dataset
from repro.paths import data_dir
from repro.saliency_models import MODELS, MapStore

from markdown_table import report  # noqa: E402  (beside this script)
from timing import best_time  # noqa: E402

#: The workers' images, loaded once per worker process.
_STIMULI = {}


def opencv_spectral_residual(image):
    """OpenCV's spectral residual of an RGB image (the peer)."""
    import cv2
    found, values = cv2.saliency.StaticSaliencySpectralResidual_create().computeSaliency(image[:, :, ::-1])
    return values


def per_image(function, images, repeat):
    """Best and median over ``repeat`` runs of the mean seconds per image of ``function`` over ``images``."""
    best, median = best_time(lambda: [function(image) for image in images], repeat)
    return best / len(images), median / len(images)


def _cells_of(job):
    """Worker: the cells of ``model``'s maps of images ``indices`` (cached under ``folder``)."""
    name, indices, folder, data = job
    if "stimuli" not in _STIMULI:
        _STIMULI["stimuli"] = load_dataset("osie", data, keep_first=True)[0]
    store = MapStore(MODELS[name], folder)
    for n in indices:
        store.cells(_STIMULI["stimuli"][n])
    return len(indices)


def all_maps(names, n_images, workers, data):
    """Seconds to compute every model's cells of ``n_images`` images with ``workers`` processes: ``{name: s}``."""
    seconds = {}
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(workers) as pool:
        list(pool.map(_cells_of, [(names[0], [0], folder + "/warm", data)] * workers))     # imports, dataset
        for name in names:
            chunks = np.array_split(np.arange(n_images), 8 * workers)
            start = time.perf_counter()
            list(pool.map(_cells_of, [(name, chunk.tolist(), f"{folder}/{name}", data) for chunk in chunks]))
            seconds[name] = time.perf_counter() - start
            print(f"{name}: {n_images} images in {seconds[name]:.0f} s", file=sys.stderr)
    return seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--all", action="store_true", help="also all maps of the 700 images with --workers processes")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    import cv2
    cv2.setNumThreads(1)
    data = data_dir(args.data)
    stimuli, _ = load_dataset("osie", data, keep_first=True)
    images = [stimuli[n] for n in range(args.images)]
    names = sorted(MODELS)
    for image in images[:1]:                      # first calls: imports, AIM's basis (learned once, cached)
        opencv_spectral_residual(image)
        for name in names:
            MODELS[name](image)
    peer, _ = per_image(opencv_spectral_residual, images, args.repeat)
    rows = []
    for name in names:
        best, median = per_image(MODELS[name], images, args.repeat)
        rows.append([name, f"{best:.3f}", f"{median:.3f}", f"{best / peer:.0f}x", "yes" if median <= 1.0 else "NO"])
    rows.append(["OpenCV spectral residual (peer, C++)", f"{peer:.4f}", "", "1x", ""])
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    machine = ex.machine()
    intro = (f"{machine}, OPENBLAS_NUM_THREADS={threads}, load average before the run "
             f"{os.getloadavg()[0]:.1f}. First {args.images} OSIE images (800 x 600 px), {args.repeat} runs; seconds "
             f"per image, computed in this process without cache. Command: `OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "
             f"python benchmarks/bench_saliency_models.py{' --all' if args.all else ''} --write`.")
    header = ["model", "s/image, best", "s/image, median", "vs OpenCV's spectral residual", "<= 1 s per image"]
    text_rows = rows
    if args.all:
        seconds = all_maps(names, len(stimuli), args.workers, data)
        total = sum(seconds.values())
        text_rows = [row + [f"{seconds[row[0]]:.0f} s"] if row[0] in seconds else row + [""] for row in rows]
        header = header + [f"all {len(stimuli)} images, {args.workers} workers"]
        intro += (f" All maps: {total / 60:.1f} min for the {len(names)} models with {args.workers} worker processes "
                  f"(goal: at most 20 min); each worker one thread.")
    report("Earlier saliency models: speed", intro, header, text_rows, "saliency_models", args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
