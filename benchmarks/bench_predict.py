"""Prediction as a user runs it: ``python -m repro predict`` end to end, its start-up, its memory over a batch, the
figures, and ``model.log_density`` per image against a PyTorch pipeline computing the same density.

    python benchmarks/bench_predict.py [--data DIR] [--images 700] [--figure-images 20] [--repeat 5]
                                       [--threads 1 2] [--no-cold] [--write]

The model: a conv5 readout with random weights (seed 0, ``DeepGazeI.save``, the network recorded as ``train``
records it). Its compute is that of a trained model (the same layers, grid and graphs; only the numbers in ``w``
differ), and it needs no training run. Measured, each in its own process:

* **log-density per image**: ``model.density(extractor).log_density_of(image)`` (what ``predict`` calls) against
  :class:`torch_deepgaze.TorchDeepGaze` (the same caffemodel and readout in PyTorch), on the first OSIE images,
  interleaved, ``--repeat`` rounds, with the same threads (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` and
  ``torch.set_num_threads`` all ``--threads``); the two densities must agree (max difference printed) before
  anything is timed. Also the trunk alone (conv1 ... conv5 with the preprocessing) of each.
* **end to end**: ``predict --list FILE --no-figures`` on ``--images`` OSIE images (all threads of the machine,
  and ``--workers 2``), wall time including start-up, and the steady rate from the outputs' file times; the
  process's RSS after 10 images and after all (polled from ``/proc``).
* **figures**: ``predict --figures`` on ``--figure-images`` images, and drawing plus writing one figure in this
  process.
* **start-up**: ``predict`` of one image with a warm compile cache, ``--repeat`` times; and the first-ever call (an
  empty Theano compile cache and weight cache: every C module compiled), once, unless ``--no-cold``.

``--write`` stores the tables in ``benchmarks/results/predict.md``, with the CPU, cores, date, load and command.
PyTorch is a benchmark-only dependency (``pip install torch``, CPU).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from markdown_table import table  # noqa: E402  (beside this script)
from timing import cpu_name  # noqa: E402


def osie_images(data, count, again=None):
    """The first ``count`` OSIE stimuli; beyond its 700, the same files again under new names (copies in the folder
    ``again``, ``<stem>_<round>.jpg``; ``predict`` would take a link for the file it points to), as distinct images
    of a user's collection."""
    files = sorted((Path(data) / "osie" / "stimuli").glob("*.jpg"))
    if count > len(files):
        if again is None:
            raise ValueError(f"{count} images asked, OSIE has {len(files)}: give a folder for the repeats")
        Path(again).mkdir(parents=True, exist_ok=True)
    chosen = []
    for i in range(count):
        path = files[i % len(files)]
        if i >= len(files):
            link = Path(again) / f"{path.stem}_{i // len(files)}{path.suffix}"
            if not link.exists():
                shutil.copyfile(path, link)
            path = link
        chosen.append(path)
    return chosen


def network_files(data):
    from repro.paths import find_weights

    return find_weights("bvlc_alexnet", None, data)


def make_model(data, path):
    """A conv5 readout with random weights (seed 0), its network recorded; saved to ``path``."""
    from repro.features import FeatureExtractor
    from repro.model import DeepGazeI
    from repro.network import Network

    prototxt, caffemodel = network_files(data)
    extractor = FeatureExtractor(Network(prototxt, caffemodel, padding="full", last_layer="pool5"))
    rng = np.random.RandomState(0)
    model = DeepGazeI(["conv5"], [256], np.full(256, 0.05), extractor.geometry(["conv5"]), w=rng.randn(256),
                      sigma=2.0, alpha=1.0, metadata={"network": extractor.metadata, "benchmark": "random weights"})
    model.save(path)


def thread_env(threads):
    return {name: str(threads) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


# -- log-density per image, in a child process ---------------------------------------------------------------------
def compute_child(data, model_path, threads, repeat, count):
    """``log_density_of`` and the trunk, ours vs PyTorch's, per image (ms): a dict."""
    import torch

    torch.set_num_threads(threads)
    from torch_deepgaze import TorchDeepGaze

    from repro.datasets import load_image
    from repro.model import DeepGazeI
    from repro.predict import extractor_for

    model = DeepGazeI.load(model_path)
    extractor = extractor_for(model, *network_files(data))
    ours = model.density(extractor)
    peer = TorchDeepGaze(extractor.network, model, extractor.mean, extractor.downsample)
    images = [load_image(path) for path in osie_images(data, count)]
    difference = relative = 0.0
    for image in images:                                     # also the warm-up (compilation, caches)
        a, b = ours.log_density_of(image), peer.log_density_of(image)
        difference = max(difference, float(np.abs(a - b).max()))
        relative = max(relative, float(np.abs(a - b).max() / np.abs(a).max()))
        for x, y in zip(extractor.features(image, model.layers), peer.features(image)):
            relative_features = float(np.abs(x - y.numpy()).max() / np.abs(x).max())
    if relative > 1e-5 or relative_features > 1e-5:
        raise SystemExit(f"the PyTorch peer disagrees: log-density max difference {difference:.2e} ({relative:.1e} "
                         f"relative), features {relative_features:.1e} relative")
    runs = {"ours": lambda im: ours.log_density_of(im), "torch": lambda im: peer.log_density_of(im),
            "ours_trunk": lambda im: extractor.features(im, model.layers), "torch_trunk": lambda im: peer.features(im)}
    times = {name: [] for name in runs}
    for r in range(repeat):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for image in images:
            for name in order:
                start = time.perf_counter()
                runs[name](image)
                times[name].append(time.perf_counter() - start)
    return {"threads": threads, "difference": difference, "relative": relative, "features": relative_features,
            "images": count, "repeat": repeat, "torch": torch.__version__,
            **{f"{name}_median": float(np.median(t)) for name, t in times.items()},
            **{f"{name}_best": float(np.min(t)) for name, t in times.items()}}


# -- the command, watched from outside ------------------------------------------------------------------------------
def rss_mb(pid):
    """Resident memory of process ``pid`` and its children (dask workers), MB; None once it is gone."""
    total, found = 0, False
    for p in [pid] + children(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
                    found = True
        except OSError:
            continue
    return total if found else None


def children(pid):
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child)] + children(int(child))
    except OSError:
        pass
    return found


def run_predict(args, env, out, expected, suffix="_logdensity.npy"):
    """Run ``python -m repro predict ARGS`` with outputs in ``out``; returns wall time, output count, RSS after 10
    outputs and at the last one, peak RSS, steady rate (images/s, from the 10th to the last output's file time)."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "repro", "predict", *args, "--out", str(out)]
    start = time.time()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rss10 = rss_last = peak = None
    while process.poll() is None:
        rss = rss_mb(process.pid)
        done = sum(1 for name in os.listdir(out) if name.endswith(suffix))
        if rss is not None:
            peak = max(peak or 0, rss)
            if done >= min(10, expected) and rss10 is None:
                rss10 = rss
            if done < expected:
                rss_last = rss
        time.sleep(0.05)
    wall = time.time() - start
    stdout, stderr = process.communicate()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr[-2000:]}")
    times = sorted(path.stat().st_mtime for path in out.glob(f"*{suffix}"))
    steady = (len(times) - 10) / (times[-1] - times[9]) if len(times) > 20 else None
    return {"wall": wall, "count": len(times), "rss10": rss10, "rss_last": rss_last, "peak": peak, "steady": steady,
            "rate": len(times) / wall}


def figure_timing(data, outputs, count):
    """Draw and write (PNG, as ``predict``) the figures of ``count`` predictions: median ms per figure."""
    import io

    from repro.datasets import load_image
    from repro.predict import density_figure, save_png

    times = []
    for path in osie_images(data, count):
        image, log_density = load_image(path), np.load(outputs / f"{path.stem}_logdensity.npy")
        start = time.perf_counter()
        save_png(density_figure(image, log_density, title=f"{path.name}: DeepGaze I (conv5), uniform prior"),
                 io.BytesIO())
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:] or times))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("DEEPGAZE_DATA") or ROOT.parent / "shared/data")
    parser.add_argument("--images", type=int, default=700, help="images predicted end to end")
    parser.add_argument("--figure-images", type=int, default=20, help="images predicted with figures")
    parser.add_argument("--compute-images", type=int, default=5, help="images timed per log-density round")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workers", type=int, nargs="*", default=[2], help="also end to end with --workers N")
    parser.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True,
                        help="time the first-ever call (empty compile cache: minutes)")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/predict.md")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data = args.data.resolve()          # the list files name images by absolute paths
    os.environ["DEEPGAZE_DATA"] = str(args.data)
    if args.child:
        print(json.dumps(compute_child(args.data, args.child[0], int(args.child[1]), args.repeat,
                                       args.compute_images)))
        return 0

    load_before, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cores = os.cpu_count()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    work = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    try:
        model = work / "model.h5"
        make_model(args.data, model)
        network = str(network_files(args.data)[0].parent)
        sections = []

        rows = []
        for threads in args.threads:
            out = subprocess.run([sys.executable, __file__, "--child", str(model), str(threads), "--data",
                                  str(args.data), "--repeat", str(args.repeat), "--compute-images",
                                  str(args.compute_images)], env=dict(env, **thread_env(threads)),
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(r, flush=True)
            rows.append([str(threads), f"{r['ours_median'] * 1e3:.1f} ({r['ours_best'] * 1e3:.1f})",
                         f"{r['torch_median'] * 1e3:.1f} ({r['torch_best'] * 1e3:.1f})",
                         f"**{r['torch_median'] / r['ours_median']:.2f}**",
                         f"{r['ours_trunk_median'] * 1e3:.1f}", f"{r['torch_trunk_median'] * 1e3:.1f}",
                         f"{r['torch_trunk_median'] / r['ours_trunk_median']:.2f}",
                         f"{r['difference']:.1e} ({r['relative']:.0e})"])
        sections.append((f"## `model.log_density` per image vs PyTorch\n\nMedian (best) ms per 800 x 600 OSIE image, "
                         f"{args.compute_images} images x {args.repeat} rounds, interleaved; PyTorch {r['torch']} "
                         f"CPU. Ratio > 1: ours faster. Trunk: conv1 ... conv5 with the preprocessing.",
                         table(["threads", "ours ms", "PyTorch ms", "PyTorch / ours", "our trunk ms",
                                "PyTorch trunk ms", "trunk ratio", "max log-density difference (relative)"], rows)))

        listing = work / "images.txt"
        listing.write_text("".join(f"{path}\n" for path in osie_images(args.data, args.images, work / "again")))
        common = ["--list", str(listing), "--model", str(model), "--network", network]
        rows = []
        runs = [("serial", [], cores)] + [(f"--workers {n}", ["--workers", str(n)], 1) for n in args.workers]
        for name, extra, threads in runs:
            r = run_predict(common + ["--no-figures"] + extra, dict(env, **thread_env(threads)),
                            work / f"out-{len(rows)}", args.images)
            print(name, r, flush=True)
            rows.append([name, str(threads), str(r["count"]), f"{r['wall']:.1f}", f"**{r['rate']:.2f}**",
                         f"{r['steady']:.2f}" if r["steady"] else "-", f"{r['rss10']:.0f}" if r["rss10"] else "-",
                         f"{r['rss_last']:.0f}" if r["rss_last"] else "-", f"{r['peak']:.0f}"])
        first_out = work / "out-0"
        figure_list = work / "figures.txt"
        figure_list.write_text("".join(f"{path}\n" for path in osie_images(args.data, args.figure_images)))
        r = run_predict(["--list", str(figure_list), "--model", str(model), "--network", network, "--figures"],
                        dict(env, **thread_env(cores)), work / "out-figures", args.figure_images, "_density.png")
        print("figures", r, flush=True)
        rows.append(["serial, --figures", str(cores), str(r["count"]), f"{r['wall']:.1f}", f"**{r['rate']:.2f}**",
                     f"{r['steady']:.2f}" if r["steady"] else "-", f"{r['rss10']:.0f}" if r["rss10"] else "-",
                     f"{r['rss_last']:.0f}" if r["rss_last"] else "-", f"{r['peak']:.0f}"])
        sections.append(("## `python -m repro predict` end to end\n\nOSIE images (800 x 600), `--list`, `.npy` "
                         "outputs; images/s over the whole command (start-up included) and steady (from the 10th to "
                         "the last output's file time); RSS of the process (with its workers) after 10 images and "
                         "before the last, polled every 50 ms. BLAS threads: per process.",
                         table(["run", "BLAS threads", "images", "wall s", "images/s", "steady images/s",
                                "RSS after 10 (MB)", "RSS at the end (MB)", "peak RSS (MB)"], rows)))
        figure_ms = figure_timing(args.data, first_out, min(args.figure_images, args.images))

        rows = []
        one = osie_images(args.data, 1)[0]
        single = [str(one), "--model", str(model), "--network", network, "--no-figures"]
        warm = [run_predict(single, env, work / f"warm-{i}", 1)["wall"] for i in range(args.repeat)]
        rows.append(["warm (compile cache filled)", f"{np.median(warm):.2f} (best {min(warm):.2f})"])
        if args.cold:
            cold = dict(env, DEEPGAZE_CACHE=str(work / "cold-cache"), DEEPGAZE_WEIGHTS=str(work / "cold-weights"))
            rows.append(["first-ever (empty compile and weight caches)",
                         f"{run_predict(single, cold, work / 'cold', 1)['wall']:.1f}"])
        sections.append((f"## Start-up: `predict` of one image, no figure\n\nWall seconds of the whole command "
                         f"(median of {args.repeat}); all threads. Drawing and writing one figure in a process: "
                         f"{figure_ms * 1e3:.0f} ms (median of {min(args.figure_images, args.images)}).",
                         table(["call", "seconds"], rows)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load_after = os.getloadavg()
    header = (f"# Prediction benchmark\n\n{cpu_name()}, {cores} cores; {started}; load average {load_before[0]:.2f} "
              f"before, {load_after[0]:.2f} after (other work on the machine makes timings noisy). Model: a conv5 "
              f"readout with random weights (seed 0; the compute of a trained one). Command: "
              f"`python benchmarks/bench_predict.py {' '.join(argv if argv is not None else sys.argv[1:])}`.")
    text = "\n\n".join([header] + [f"{intro}\n\n{body}" for intro, body in sections]) + "\n"
    print(text)
    if args.write:
        (HERE / "results" / "predict.md").write_text(text, encoding="utf-8")
        print(f"wrote {HERE / 'results' / 'predict.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
