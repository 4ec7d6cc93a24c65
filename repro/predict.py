"""Predicting fixation densities for new images with a trained DeepGaze I model.

``python -m repro predict IMAGE... [--model MODEL.h5]`` writes, for every image, the log-density
(``<name>_logdensity.npy``, shape ``(H, W)``, natural log, ``exp`` sums to one) and a picture of it
(``<name>_density.png``: the image with its 25/50/75 % highest-density contours | the log-density with
a colour bar). The network must be the one the model was trained with: the
model file records its caffemodel's SHA-1, the digest of the network its prototxt describes, the padding and
downsampling, and prediction refuses another network, or records that contradict each other.
"""
import logging
import sys
from pathlib import Path

import numpy as np

from .caffe import network_digest
from .datasets import load_image
from .features import FeatureExtractor, FeatureStore
from .model import DeepGazeI
from .network import PADDINGS, Network
from .paths import atomic_path, data_dir, find_weights, weights_dir

__all__ = ["default_model", "TEMPLATE_FRAME", "center_bias_template", "extractor_for",
           "highest_density_levels", "density_figure", "read_fixation_points", "predict_files"]

log = logging.getLogger(__name__)


def default_model():
    """Where ``python -m repro train`` writes its model and ``predict`` reads it: ``weights/deepgaze1.h5``
    (``DEEPGAZE_WEIGHTS/deepgaze1.h5``)."""
    return weights_dir() / "deepgaze1.h5"


#: The common frame of the centre-bias templates (the paper's KDE for images of mixed sizes).
TEMPLATE_FRAME = (100, 100)


def center_bias_template(name, data=None, progress=True):
    """The centre bias ``--centerbias`` names: ``"uniform"`` (None), a template file, or a dataset's template
    (the dataset in ``data``, default ``DEEPGAZE_DATA``).

    A dataset's (a key of :data:`repro.datasets.DATASET_FOLDERS`: ``"osie"``, ``"mit1003"``) is the paper's
    100 x 100-frame KDE of all its fixations, fitted once and kept in
    ``<cache>/centerbias/<dataset>-<sha1 of its fixation file>.npz`` (its ``fixation_file`` in the registry;
    a small file, :class:`repro.centerbias.CenterBiasTemplate`), which later calls read.

    Returns
    -------
    repro.centerbias.CenterBiasTemplate or None
    """
    from .centerbias import CenterBiasTemplate, fit_center_bias
    from .datasets import DATASET_FOLDERS, DATASETS, dataset_folder, load_dataset
    from .paths import cache_dir, file_digest

    if name == "uniform":
        return None
    if name not in DATASET_FOLDERS:
        if not Path(name).is_file():
            raise FileNotFoundError(f"--centerbias {name}: no such template file "
                                    f"(or use {', '.join(['uniform', *DATASET_FOLDERS])})")
        return CenterBiasTemplate.load(name)
    data = data or data_dir()
    folder = dataset_folder(name, data)
    table = folder / DATASETS[name].fixation_file
    path = cache_dir("centerbias") / f"{name}-{file_digest(table, 'sha1')}.npz"
    if not path.is_file():
        stimuli, fixations = load_dataset(name, data, keep_first=False)
        if progress:
            print(f"fitting the centre bias of {name} once ({len(fixations)} fixations, 100 x 100 frame); "
                  f"it is kept in {path}", file=sys.stderr)
        fitted = fit_center_bias(stimuli.sizes, fixations, frame=TEMPLATE_FRAME, progress=progress)
        CenterBiasTemplate.from_center_bias(fitted, source=f"{name}: {folder.name}, first fixations dropped").save(path)
    return CenterBiasTemplate.load(path)


def extractor_for(model, prototxt, caffemodel):
    """The feature extractor a model was trained with, checked against the model's record.

    Raises ValueError if the model records no network (it could then run on any weights, silently wrong),
    if ``caffemodel`` is not the recorded one, if ``prototxt`` describes another network than the recorded
    one (its :func:`repro.caffe.network_digest`), if a layer of the model is not in the network, or if the
    model's records contradict each other: where its layers' units sit (its geometry) or how many features
    they have differ from what the recorded network, padding and downsampling give.

    A model saved before models recorded their prototxt's digest (no ``network_sha1``) is still used, with a
    warning: its prototxt is then checked only through the geometry and channels of the layers it reads.
    """
    recorded = model.metadata.get("network")
    if not isinstance(recorded, dict) or "caffemodel_sha1" not in recorded:
        raise ValueError("the model records no network (metadata['network']), so nothing says which weights its "
                         "readout belongs to; train it again with the network recorded, e.g. "
                         "train_model(..., metadata={'network': extractor.metadata})")
    padding, downsample, mean = recorded.get("padding", "full"), recorded.get("downsample", 2), recorded.get("mean")
    if padding not in PADDINGS or type(downsample) is not int or downsample < 1:
        raise ValueError(f"the model records padding {padding!r} and downsampling {downsample!r}; expected one of "
                         f"{PADDINGS} and a positive whole number: the file is damaged or edited, train it again")
    network = Network(prototxt, caffemodel, padding=padding, last_layer="pool5")
    if recorded["caffemodel_sha1"] != network.model.sha1:
        raise ValueError(f"{caffemodel} (sha1 {network.model.sha1}) is not the network the model was trained "
                         f"with ({recorded.get('caffemodel')}, sha1 {recorded['caffemodel_sha1']})")
    digest = network_digest(network.model.layers)
    if "network_sha1" not in recorded:
        log.warning("the model records no digest of its prototxt (saved by an earlier version); %s is checked only "
                    "through the layers the readout reads. Train it again to record it", prototxt)
    elif recorded["network_sha1"] != digest:
        raise ValueError(f"{prototxt} describes another network (digest {digest}) than the model was trained with "
                         f"({recorded.get('prototxt', 'its prototxt')}, digest {recorded['network_sha1']}): a layer "
                         f"or parameter differs up to pool5; use the prototxt it was trained with")
    unknown = [layer for layer in model.layers if layer not in network.layer_names]
    if unknown:
        raise ValueError(f"the model reads layer(s) {unknown}, which {prototxt} (up to pool5) does not have; "
                         f"its layers: {', '.join(network.layer_names)}")
    extractor = FeatureExtractor(network, downsample=downsample, **({"mean": mean} if isinstance(mean, list) else {}))
    _check_records(model, extractor)
    return extractor


def _check_records(model, extractor):
    """Raise ValueError if the model's geometry or channel counts are not what ``extractor`` (the network, padding
    and downsampling it records) gives for its layers: its records contradict each other."""
    channels = [extractor.network.output_shape(layer, (227, 227))[0] for layer in model.layers]
    geometry = extractor.geometry(model.layers)
    same_geometry = np.allclose(np.array([*geometry.units, geometry.grid]),
                                np.array([*model.geometry.units, model.geometry.grid]), rtol=0, atol=1e-9)
    if channels != model.channels or not same_geometry:
        raise ValueError(f"the model's records contradict each other: its layers {model.layers} have "
                         f"{model.channels} features with units at (first, step) {list(model.geometry.units)} "
                         f"(grid {model.geometry.grid}), but the network it records "
                         f"(padding {extractor.network.padding!r}, downsampling {extractor.downsample}) gives "
                         f"{channels} features at {list(geometry.units)} (grid {geometry.grid}); the file was "
                         f"edited or damaged: train the model again")


def highest_density_levels(log_density, masses=(0.25, 0.5, 0.75)):
    """Log-density thresholds of the highest-density regions holding ``masses`` of the fixation probability.

    The region of mass ``q`` is the smallest set of pixels whose probabilities sum to ``q``: the pixels
    with ``log_density >= level``. Returns one level per mass, in the order given.
    """
    values = np.sort(np.asarray(log_density, dtype=np.float64).ravel())[::-1]
    cumulative = np.cumsum(np.exp(values))
    return [float(values[min(np.searchsorted(cumulative, q), len(values) - 1)]) for q in masses]


def density_figure(image, log_density, fixations=None, title=None, masses=(0.25, 0.5, 0.75)):
    """A picture of a prediction a researcher can read: the image with the contours of the highest-density
    regions holding 25, 50 and 75 % of the fixation probability (and fixations, if given) | the log-density
    as a heat map with a colour bar.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
    log_density : ndarray, shape (H, W)
        Natural log of the probability of each pixel (``exp`` sums to one).
    fixations : ndarray, shape (n, 2), optional
        ``(x, y)`` in pixels.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib
    from matplotlib import pyplot as plt
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    height, width = log_density.shape
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 12 * height / width / 2 + 1.2))
    left.imshow(image)
    levels = highest_density_levels(log_density, masses)
    colours = plt.get_cmap("autumn")(np.linspace(0, 0.8, len(masses)))
    order = [i for i in np.argsort(levels) if levels[i] < log_density.max()]   # increasing: 75 %, 50 %, 25 %
    if len(set(levels[i] for i in order)) == len(order) and order:            # a flat map has no regions
        left.contour(log_density, levels=[levels[i] for i in order], colors=[colours[i] for i in order],
                     linewidths=1.5)
    handles = [matplotlib.lines.Line2D([], [], color=colours[i], lw=1.5) for i in range(len(masses))]
    labels = [f"{100 * q:.0f} % of the probability" for q in masses]
    if fixations is not None and len(fixations):
        left.scatter(*np.asarray(fixations, dtype=float).T, s=12, c="cyan", edgecolors="k", linewidths=0.4)
        handles.append(matplotlib.lines.Line2D([], [], ls="", marker="o", color="cyan", mec="k"))
        labels.append(f"fixations ({len(fixations)})")
    left.legend(handles, labels, fontsize=8, loc="lower left", framealpha=0.8)
    left.set_title("highest-density regions", fontsize=10)
    low = max(float(log_density.min()), float(log_density.max()) - np.log(1000))   # 1000-fold range shown
    heat = right.imshow(log_density, cmap="inferno", vmin=low, vmax=float(log_density.max()))
    bar = figure.colorbar(heat, cax=make_axes_locatable(right).append_axes("right", size="4%", pad=0.08))
    bar.set_label("log density, ln p per pixel (p sums to 1)", fontsize=9)
    right.set_title(f"log-density (uniform would be {-np.log(height * width):.1f})", fontsize=10)
    for ax in (left, right):
        ax.set_xticks([]), ax.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def read_fixation_points(table):
    """``{image name or None: (n, 2) array of (x, y)}`` from a CSV with columns ``x, y`` and optionally ``image``
    (the file name, with or without extension); rows without ``image`` belong to every image."""
    from .datasets import float_column, read_table

    header, rows, lines = read_table(table)
    missing = [name for name in ("x", "y") if name not in header]
    if missing:
        raise ValueError(f"{table}: no column(s) {missing}; expected x, y (pixels) and optionally image")
    x, y = (float_column([row[header.index(c)] for row in rows], (table, c, lines)) for c in ("x", "y"))
    images = [Path(row[header.index("image")]).stem if "image" in header else None for row in rows]
    return {name: np.stack([x, y], axis=1)[[i for i, n in enumerate(images) if n == name]] for name in set(images)}


def predict_files(images, model_path, network_folder=None, centerbias=None, out=".", fixations=None, progress=True):
    """Predict and write the log-density and a picture of it (:func:`density_figure`) for every image file.

    Parameters
    ----------
    images : list of str or Path
    model_path : str or Path
        A model saved by :meth:`repro.model.DeepGazeI.save`.
    network_folder : str or Path, optional
        A folder with ``deploy.prototxt`` and a ``*.caffemodel``; default: BVLC AlexNet where
        :func:`repro.paths.find_weights` finds it (the data directory's, then ``weights/bvlc_alexnet``), the
        order the experiments and ``train`` use.
    centerbias : repro.density.DensityModel, optional
        The prior: its ``log_density_of(image)`` (a :class:`repro.centerbias.CenterBiasTemplate`, see
        :func:`center_bias_template`, or a :class:`~repro.centerbias.CenterBias`); default uniform.
    out : str or Path
        Output folder.
    fixations : str or Path, optional
        A CSV of fixations to draw (see :func:`read_fixation_points`).

    Returns
    -------
    list of Path
        The ``.npy`` files written.
    """
    from matplotlib import pyplot as plt
    from tqdm.auto import tqdm

    images = [Path(p) for p in images]
    by_name = {}
    for path in images:
        by_name.setdefault(path.stem, []).append(str(path))
    clashing = [paths for paths in by_name.values() if len(paths) > 1]
    if clashing:
        raise ValueError(f"{' and '.join(clashing[0])} would write the same output files "
                         f"({Path(clashing[0][0]).stem}_logdensity.npy); rename one or predict them into "
                         f"different --out folders")
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"no model at {model_path}: train one with 'python -m repro train' or pass --model")
    model = DeepGazeI.load(model_path)
    points = read_fixation_points(fixations) if fixations else {}
    network = find_weights("bvlc_alexnet", network_folder, data_dir(required=False))
    if network is None:
        raise FileNotFoundError("no deploy.prototxt + *.caffemodel of bvlc_alexnet in the data directory's weights/ "
                                f"or in {weights_dir()}; run 'python -m repro download bvlc_alexnet' or pass "
                                "--network FOLDER")
    density = model.density(FeatureStore(extractor_for(model, *network)), centerbias)
    out = Path(out)
    written = []
    for path in tqdm(images, desc="predict", disable=not progress):
        image = load_image(path)
        log_density = density.log_density_of(image)
        target = out / f"{path.stem}_logdensity.npy"
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            np.save(handle, log_density)
        drawn = points.get(path.stem, points.get(None))
        figure = density_figure(image, log_density, drawn, title=f"{path.name}: DeepGaze I "
                                f"({' + '.join(model.layers)}), {'centre-bias' if centerbias else 'uniform'} prior")
        with atomic_path(out / f"{path.stem}_density.png") as tmp:
            figure.savefig(tmp, format="png", dpi=100)
        plt.close(figure)
        written.append(target)
    return written
