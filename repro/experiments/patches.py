"""Fitted readouts and the image patches their top features respond to (Figures 6 and 7)."""
from pathlib import Path

import numpy as np

from .. import paths
from .grid import config_key, fit_config, grid_runner

__all__ = ["load_model", "top_features", "strongest_units", "top_feature_patches", "unit_box", "crop"]

def load_model(config, folder=None):
    """The readout fitted for ``config`` (run :func:`run_grid` on it first)."""
    from ..model import DeepGazeI

    path = Path(folder or paths.cache_dir("experiments")) / f"{config_key(config)}.h5"
    if not path.is_file():
        raise FileNotFoundError(f"no fitted model {path}: run the grid of this configuration first")
    return DeepGazeI.load(path)


def top_features(weights, n=10):
    """Indices of the ``n`` features of largest ``|weight|``, largest first."""
    return np.argsort(-np.abs(np.asarray(weights)), kind="stable")[:n]


def strongest_units(setup, layer, channels, signs, n=9):
    """For each feature, the ``n`` images where it responds most (sign -1: least), with the unit of that response.

    One unit per image (its extreme), so the patches come from ``n`` different images. Every image's
    features are read once for all ``channels``.

    Parameters
    ----------
    channels : sequence of int
    signs : sequence of float
        +1 (largest response) or -1 (smallest) for each channel.

    Returns
    -------
    list, for each channel, of lists of (image index, row, column, response), strongest first
    """
    found = [[] for _ in channels]
    for index in range(len(setup.stimuli)):
        maps = setup.store.features(setup.stimuli[index], [layer])[0]
        for units, channel, sign in zip(found, channels, signs):
            response = sign * maps[channel]
            row, col = np.unravel_index(np.argmax(response), response.shape)
            units.append((index, int(row), int(col), float(sign * response[row, col])))
    return [sorted(units, key=lambda u: -sign * u[3])[:n] for units, sign in zip(found, signs)]


def top_feature_patches(args, setup, n_features, n_patches):
    """Figures 6 and 7: fit the conv5 readout on every fold, average the weights, find the top features' patches.

    Returns
    -------
    found : list of (channel, weight, [(image index, row, column, response), ...]), most weighted feature first
    grid : GridResults
        The fits.
    """
    results = grid_runner(args)([fit_config(setup, ["conv5"], s) for s in setup.folds])
    weights = np.mean([r["w"] for r in results], axis=0)
    channels = [int(c) for c in top_features(weights, n_features)]
    signs = [np.sign(weights[c]) or 1.0 for c in channels]
    units = strongest_units(setup, "conv5", channels, signs, n_patches)
    return [(c, float(weights[c]), u) for c, u in zip(channels, units)], results


def unit_box(setup, layer, row, col):
    """The receptive field of unit ``(row, col)`` of ``layer`` in image pixels: ``(top, left, size)``.

    From :meth:`repro.network.Network.receptive_field` (network-input pixels) times the initial
    downsampling factor.
    """
    size, stride, offset = setup.store.extractor.network.receptive_field(layer)
    factor = setup.store.extractor.downsample
    return (offset + row * stride) * factor, (offset + col * stride) * factor, size * factor


def crop(image, top, left, size):
    """The square ``size`` x ``size`` patch at ``(top, left)``, grey (128) where it leaves the image."""
    patch = np.full((size, size, 3), 128, np.uint8)
    rows = slice(max(top, 0), min(top + size, image.shape[0]))
    cols = slice(max(left, 0), min(left + size, image.shape[1]))
    patch[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = image[rows, cols]
    return patch
