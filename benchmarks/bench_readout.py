"""The DeepGaze I readout's value and gradient per image: Theano (repro.model) against PyTorch.

    python benchmarks/bench_readout.py [--data DIR] [--layers conv5 ...] [--stack 35] [--repeat 20] [--write]

Both compute the same thing on the same real AlexNet features of OSIE images (800 x 600): per-layer
weighted sums interpolated to the readout grid (AlexNet's conv1 units, 76 x 101 cells), a Gaussian
blur with border renormalisation, the log centre bias in cells with weight alpha, a softmax over the
cells, the summed log-likelihood of the images' fixations (counted per cell, minus log pixels per
cell) and its gradient with respect to (w, log sigma, alpha), for a stack of images as one SFO
subfunction evaluates them (``--stack``, and one image alone), from float32 maps and, for the stack, from
bfloat16 ones as large training sets are held (:mod:`repro.bfloat16`; PyTorch gets them as ``torch.bfloat16``
and expands them where it uses them). PyTorch (CPU, float32; as many threads
as OPENBLAS_NUM_THREADS gives Theano's BLAS, if set) is only a peer for timing: ``pip install
torch==2.13.0``. The values of the two must agree before anything is timed. ``--write`` stores the
table in ``benchmarks/results/readout.md``.
"""
import argparse
import os

import numpy as np

from repro import paths
from repro.bfloat16 import compact
from repro.datasets import load_osie
from repro.features import FeatureExtractor
from repro.model import DeepGazeI, Stacker
from repro.network import Network

from markdown_table import report  # noqa: E402  (beside this script)
from timing import best_time  # noqa: E402


def torch_loglik_and_grad(torch, stacks, grid, scales, w, log_sigma, alpha, log_prior, counts):
    """The readout in PyTorch, written as one would there; returns a closure giving (value, grad_w, grad_log_sigma, grad_alpha)."""
    # (C_l, B, h_l, w_l); bfloat16 bits (uint16) become torch.bfloat16 tensors, expanded where they are used
    maps = [torch.from_numpy(f.view(np.int16)).view(torch.bfloat16) if f.dtype == np.uint16 else torch.from_numpy(f)
            for f in stacks]
    rows = [torch.from_numpy(r) for r in grid.rows]
    cols = [torch.from_numpy(c) for c in grid.cols]
    prior, count = torch.from_numpy(log_prior), torch.from_numpy(counts)
    log_pixels = torch.from_numpy(np.log(grid.pixels).astype(np.float32))
    scales_t = torch.from_numpy(scales)

    def gaussian(sigma, n):
        i = torch.arange(n, dtype=torch.float32)
        weights = torch.exp(-(i[:, None] - i[None, :]) ** 2 / (2 * sigma ** 2))
        return weights / weights.sum(dim=1, keepdim=True)

    def run():
        w_t = torch.tensor(w, dtype=torch.float32, requires_grad=True)
        ls_t = torch.tensor(float(log_sigma), requires_grad=True)
        a_t = torch.tensor(float(alpha), requires_grad=True)
        sigma = torch.exp(ls_t)
        blur_rows, blur_cols = gaussian(sigma, grid.shape[0]), gaussian(sigma, grid.shape[1])
        effective, start, saliency = w_t * scales_t, 0, 0
        for m, r, c in zip(maps, rows, cols):
            layer_sum = torch.tensordot(effective[start:start + m.shape[0]], m.float(), dims=1)  # (B, h_l, w_l)
            saliency = saliency + (blur_rows @ r) @ layer_sum @ (blur_cols @ c).T
            start += m.shape[0]
        output = saliency + a_t * prior
        log_mass = output - torch.logsumexp(output.reshape(output.shape[0], -1), 1)[:, None, None]
        total = (count * (log_mass - log_pixels)).sum()
        total.backward()
        return float(total.detach()), w_t.grad.numpy(), float(ls_t.grad), float(a_t.grad)

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    parser.add_argument("--layers", nargs="+", default=[["conv5"], ["conv1", "conv5"]], action="append")
    parser.add_argument("--stack", type=int, default=35, help="images per evaluation (an SFO subfunction)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    import torch
    if os.environ.get("OPENBLAS_NUM_THREADS"):          # same thread budget for both peers
        torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))

    data = paths.data_dir(args.data)
    stimuli, fixations = load_osie(data / "osie", keep_first=False)
    folder = data / "weights" / "bvlc_alexnet"
    extractor = FeatureExtractor(Network(folder / "deploy.prototxt", folder / "bvlc_alexnet_conv_q8.v2.caffemodel",
                                         padding="full", last_layer="pool5"))
    layer_sets = args.layers if isinstance(args.layers[0], list) else [args.layers]
    rows = []
    for layers in layer_sets:
        for size, held in ((args.stack, "float32"), (args.stack, "bfloat16"), (1, "float32")):
            images = [stimuli[n] for n in range(size)]
            feature_lists = [extractor.features(image, layers) for image in images]
            channels = [f.shape[0] for f in feature_lists[0]]
            rng = np.random.RandomState(0)
            model = DeepGazeI(layers, channels, rng.rand(sum(channels)).astype(np.float32) + 0.5,
                              extractor.geometry(layers), w=rng.randn(sum(channels)) * 0.01, sigma=2.0, alpha=0.7)
            grid = model.grid(images[0].shape, feature_lists[0])
            stacks = Stacker(reuse=False)(feature_lists) if held == "float32" else [compact(s) for s in Stacker(reuse=False)(feature_lists)]
            log_prior = np.stack([np.log(grid.pixels / grid.pixels.sum()).astype(np.float32)] * size)
            counts = np.stack([grid.counts(fixations.for_images([n]).x, fixations.for_images([n]).y)
                               for n in range(size)])
            theano_run = lambda: model.loglik_and_grad(stacks, grid, log_prior, counts)  # noqa: E731
            torch_run = torch_loglik_and_grad(torch, stacks, grid, model.feature_scales, model.w.astype(np.float32),
                                              np.log(model.sigma), model.alpha, log_prior, counts)
            value, grad = theano_run()
            t_value, t_w, t_ls, t_a = torch_run()
            assert abs(value - t_value) < 1e-4 * abs(value), (value, t_value)
            np.testing.assert_allclose(grad["w"], t_w, rtol=1e-2, atol=1e-3 * np.abs(t_w).max())
            theano_best, theano_median = best_time(theano_run, args.repeat)
            torch_best, torch_median = best_time(torch_run, args.repeat)
            per = 1e3 / size
            rows.append([" + ".join(layers), str(sum(channels)), f"{grid.shape[0]} x {grid.shape[1]}", str(size), held,
                         f"{per * theano_best:.2f} ({per * theano_median:.2f})",
                         f"{per * torch_best:.2f} ({per * torch_median:.2f})", f"{torch_best / theano_best:.2f}"])
    load = os.getloadavg()[0]
    intro = (f"Value and gradient of the summed log-likelihood of the fixations on the first OSIE images "
             f"(800 x 600 px), per image, for a stack of images evaluated in one call; best (median) of "
             f"{args.repeat}; PyTorch {torch.__version__} CPU with {torch.get_num_threads()} threads, Theano's "
             f"OpenBLAS with {os.environ.get('OPENBLAS_NUM_THREADS', 'default')} threads; load average "
             f"{load:.2f} at the end. Ratio > 1: Theano is faster.")
    report("DeepGaze I readout: Theano vs PyTorch", intro,
           ["layers", "features", "grid (cells)", "images per call", "maps held as", "Theano ms / image",
            "PyTorch ms / image",
            "PyTorch / Theano"], rows, "readout", args.write)


if __name__ == "__main__":
    main()
