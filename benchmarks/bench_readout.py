"""The DeepGaze I readout's value and gradient per image: Theano (repro.model) against PyTorch.

    python benchmarks/bench_readout.py [--data DIR] [--layers conv5 ...] [--repeat 20] [--write]

Both compute the same thing on the same real AlexNet features of an OSIE image (800 x 600):
per-layer weighted sums rescaled to the grid, a Gaussian blur with border renormalisation, bilinear
upsampling to the image's pixels, the log centre bias with weight alpha, log-softmax, the summed
log-likelihood of 150 fixations and its gradient with respect to (w, log sigma, alpha). PyTorch
(CPU, float32; as many threads as OPENBLAS_NUM_THREADS gives Theano's BLAS, if set) is only a peer for timing: ``pip install torch==2.13.0``. The
values of the two must agree before anything is timed. ``--write`` stores the table in
``benchmarks/results/readout.md``.
"""
import argparse

import numpy as np

from repro import paths
from repro.datasets import load_osie
from repro.features import FeatureExtractor, grid_shape, resize_matrix
from repro.model import DeepGazeI
from repro.network import Network

from markdown_table import report  # noqa: E402  (beside this script)
from timing import best_time  # noqa: E402


def torch_loglik_and_grad(torch, features, scales, w, log_sigma, alpha, log_centerbias, fixation_index):
    """The readout in PyTorch: returns (value, grad_w, grad_log_sigma, grad_alpha) and a closure to rerun it."""
    maps = [torch.from_numpy(f) for f in features]
    grid = grid_shape([f.shape for f in features])
    rows = [torch.from_numpy(resize_matrix(grid[0], f.shape[1])) for f in features]
    cols = [torch.from_numpy(resize_matrix(grid[1], f.shape[2])) for f in features]
    up_rows = torch.from_numpy(resize_matrix(log_centerbias.shape[0], grid[0]))
    up_cols = torch.from_numpy(resize_matrix(log_centerbias.shape[1], grid[1]))
    prior = torch.from_numpy(log_centerbias)
    index = torch.from_numpy(np.asarray(fixation_index, dtype=np.int64))
    scales_t = torch.from_numpy(scales)

    def gaussian(sigma, n):
        i = torch.arange(n, dtype=torch.float32)
        weights = torch.exp(-(i[:, None] - i[None, :]) ** 2 / (2 * sigma ** 2))
        return weights / weights.sum(dim=1, keepdim=True)

    def run():
        w_t = torch.tensor(w, dtype=torch.float32, requires_grad=True)
        ls_t = torch.tensor(float(log_sigma), requires_grad=True)
        a_t = torch.tensor(float(alpha), requires_grad=True)
        effective, start, saliency = w_t * scales_t, 0, 0
        for m, r, c in zip(maps, rows, cols):
            layer_sum = torch.tensordot(effective[start:start + m.shape[0]], m, dims=1)
            saliency = saliency + r @ layer_sum @ c.T
            start += m.shape[0]
        sigma = torch.exp(ls_t)
        blurred = gaussian(sigma, grid[0]) @ saliency @ gaussian(sigma, grid[1]).T
        output = up_rows @ blurred @ up_cols.T + a_t * prior
        log_density = output - torch.logsumexp(output.reshape(-1), 0)
        total = log_density.reshape(-1)[index].sum()
        total.backward()
        return float(total.detach()), w_t.grad.numpy(), float(ls_t.grad), float(a_t.grad)

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="data directory (default: DEEPGAZE_DATA)")
    parser.add_argument("--layers", nargs="+", default=[["conv5"], ["conv1", "conv5"]], action="append")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    import os

    import torch
    if os.environ.get("OPENBLAS_NUM_THREADS"):          # same thread budget for both peers
        torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))

    data = paths.data_dir(args.data)
    stimuli, fixations = load_osie(data / "osie", keep_first=False)
    folder = data / "weights" / "bvlc_alexnet"
    extractor = FeatureExtractor(Network(folder / "deploy.prototxt", folder / "bvlc_alexnet_conv_q8.v2.caffemodel",
                                         padding="full", last_layer="pool5"))
    image = stimuli[0]
    on_image = fixations.for_images([0])
    fixation_index = on_image.y_int * image.shape[1] + on_image.x_int
    prior = np.zeros(image.shape[:2], np.float32) - np.log(image.shape[0] * image.shape[1], dtype=np.float32)
    layer_sets = args.layers if isinstance(args.layers[0], list) else [args.layers]
    rows = []
    for layers in layer_sets:
        features = extractor(image, layers)
        channels = [f.shape[0] for f in features]
        rng = np.random.RandomState(0)
        model = DeepGazeI(layers, channels, rng.rand(sum(channels)).astype(np.float32) + 0.5,
                          w=rng.randn(sum(channels)) * 0.01, sigma=2.0, alpha=0.7)
        theano_run = lambda: model.loglik_and_grad(features, prior, fixation_index)  # noqa: E731
        torch_run = torch_loglik_and_grad(torch, features, model.feature_scales, model.w.astype(np.float32),
                                          np.log(model.sigma), model.alpha, prior, fixation_index)
        value, grad = theano_run()
        t_value, t_w, t_ls, t_a = torch_run()
        assert abs(value - t_value) < 1e-3 * abs(value), (value, t_value)
        np.testing.assert_allclose(grad["w"], t_w, rtol=1e-2, atol=1e-3 * np.abs(t_w).max())
        theano_best, theano_median = best_time(theano_run, args.repeat)
        torch_best, torch_median = best_time(torch_run, args.repeat)
        rows.append([" + ".join(layers), str(sum(channels)), f"{grid_shape([f.shape for f in features])}",
                     f"{1e3 * theano_best:.1f} ({1e3 * theano_median:.1f})",
                     f"{1e3 * torch_best:.1f} ({1e3 * torch_median:.1f})", f"{torch_best / theano_best:.2f}"])
    intro = (f"Value and gradient of the summed log-likelihood of {len(fixation_index)} fixations on OSIE image "
             f"{stimuli.ids[0]} ({image.shape[1]} x {image.shape[0]} px), best (median) of {args.repeat}; "
             f"PyTorch {torch.__version__} CPU with {torch.get_num_threads()} threads, Theano's OpenBLAS with "
             f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')} threads. Ratio > 1: Theano is faster.")
    report("DeepGaze I readout: Theano vs PyTorch", intro,
           ["layers", "features", "grid", "Theano ms", "PyTorch ms", "PyTorch / Theano"], rows, "readout", args.write)


if __name__ == "__main__":
    main()
