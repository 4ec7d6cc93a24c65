"""PLACEHOLDER for Figure 5 (layer selection) until the experiments issue lands.

It runs the Theano stack end to end on a real photograph shipped with
scikit-image: downsample by 2, a small bank of random 5 x 5 filters with
``full`` padding, ReLU, max pooling, a weighted sum, softmax over the image.
It writes ``results/fig5_layers_placeholder.png`` and prints one line. The
numbers mean nothing about saliency; the real script replaces this file.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from repro.backend import T, theano  # noqa: E402
from theano.tensor.nnet import conv2d  # noqa: E402
from theano.tensor.signal.pool import pool_2d  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "results"))
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage import data, transform

    start = time.time()
    image = data.astronaut()                                       # (512, 512, 3) uint8 RGB
    small = transform.rescale(image, 0.5, channel_axis=2, anti_aliasing=True)
    x = small.transpose(2, 0, 1)[None].astype("float32")          # (1, 3, 256, 256)

    rng = np.random.RandomState(args.seed)
    filters = theano.shared(rng.randn(8, 3, 5, 5).astype("float32"))
    weights = theano.shared(rng.randn(8).astype("float32"))
    inp = T.tensor4("image")
    maps = pool_2d(T.nnet.relu(conv2d(inp, filters, border_mode="full")), (2, 2), ignore_border=False)
    saliency = T.tensordot(weights, maps[0], axes=1)
    log_density = saliency - T.log(T.exp(saliency - saliency.max()).sum()) - saliency.max()
    grad = T.grad(log_density[10, 10], weights)
    run = theano.function([inp], [log_density, grad])
    density, gradient = run(x)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    axes[0].imshow(image)
    axes[0].set_title("input (scikit-image 'astronaut')")
    shown = axes[1].imshow(density, cmap="magma")
    axes[1].set_title("log-density of a random readout (placeholder)")
    fig.colorbar(shown, ax=axes[1], label="log p (nats)")
    for ax in axes:
        ax.axis("off")
    fig.suptitle("PLACEHOLDER: Theano stack check, not Figure 5")
    fig.savefig(out / "fig5_layers_placeholder.png", dpi=80)
    total = float(np.exp(density).sum())
    print(f"placeholder fig5_layers: Theano conv/pool/softmax graph ran, density sums to {total:.6f}, "
          f"|grad|={np.linalg.norm(gradient):.3g}, {time.time() - start:.1f} s -> {out / 'fig5_layers_placeholder.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
