"""Predicting fixation densities for new images with a trained DeepGaze I model: one image or a collection.

``python -m repro predict SOURCE... [--model MODEL.h5]`` takes image files, folders (the images in them, by
name), glob patterns (``'photos/**/*.jpg'``) and list files (``@list.txt`` or ``--list FILE``: one file, folder or
pattern a line; relative ones from the list's folder), and writes for every image its log-density
(``<stem>_logdensity.npy``, shape ``(H, W)``, float64, natural log, ``exp`` sums to one) or, with ``--hdf5 FILE``,
one dataset per image in one HDF5 file (:class:`HDF5Predictions`, the layout pysaliency's ``HDF5Model`` reads);
and, with ``--figures`` (the default for up to :data:`FIGURES_UP_TO` images), a picture of it
(``<stem>_density.png``: the image with its 25/50/75 % highest-density contours | the log-density with a colour
bar). Two images of the same stem are an error before anything is computed.

Images are read, predicted and written one at a time, so memory stays flat however many there are. Every output
is written under a temporary name and renamed when complete (:func:`repro.paths.atomic_path`; in the HDF5 file a
dataset counts once its ``complete`` attribute is set), and a run skips the images whose outputs are all there:
running a killed command again completes it, losing at most the image that was in flight. A bad image stops the
run with an error naming the file; the outputs written so far are kept. ``--workers N`` (a local dask cluster of
N single-thread processes) or ``--scheduler ADDRESS`` (a running ``dask.distributed`` cluster whose workers see
the same paths) spread the images over processes: each loads the model once (:func:`loaded_density`), draws and
writes its images' outputs itself (an image retried after a lost worker is written again, identically), and with
``--hdf5`` sends the log-densities back to this process, the file's one writer. The results are bit for bit
those of a serial run with the same number of BLAS threads: local workers inherit this process's
(:func:`repro.cluster.same_blas_threads`); give a ``--scheduler`` cluster's workers the same ``OPENBLAS_NUM_THREADS``
(dask's default, one, changes the last bits of the network's float32 sums, 1e-6 relative, against two).

The network must be the one the model was trained with: the model file records its caffemodel's SHA-1, the
digest of the network its prototxt describes, the padding and downsampling, and prediction refuses another
network, or records that contradict each other.
"""
import contextlib
import glob
import hashlib
import logging
import pickle
import sys
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from .caffe import network_digest
from .datasets import load_image
from .features import FeatureExtractor
from .model import DeepGazeI
from .network import PADDINGS, Network
from .paths import atomic_path, data_dir, file_digest, find_weights, weights_dir

__all__ = ["default_model", "TEMPLATE_FRAME", "center_bias_template", "extractor_for",
           "highest_density_levels", "density_figure", "save_png", "read_fixation_points", "IMAGE_SUFFIXES",
           "FIGURES_UP_TO",
           "gather_images", "check_names", "Job", "loaded_density", "predict_image", "HDF5Predictions",
           "Predicted", "predict_files"]

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

    The values are first counted into 1024 bins of log-density (their probabilities summed per bin), and only
    the bin where a mass is reached is sorted: the levels of a full sort, in a third of its time for an
    800 x 600 map.
    """
    values = np.asarray(log_density).ravel()
    if values.dtype != np.float32:
        values = values.astype(np.float64)
    top = float(values.max())
    finite = values > -np.inf
    low = float(values.min() if finite.all() else values[finite].min())
    if top == low:
        return [top] * len(masses)
    bins = 1024
    # the bins in the values' own precision (rounding keeps their order); the probabilities summed in float64
    index = np.minimum((top - values) * values.dtype.type((bins - 1) / (top - low)), bins - 1).astype(np.intp)
    probability = np.exp(values, dtype=np.float64)
    before = np.concatenate([[0.0], np.cumsum(np.bincount(index, weights=probability, minlength=bins))])
    levels = []
    for q in masses:
        b = min(int(np.searchsorted(before[1:], q)), bins - 1)                 # the bin where q is reached
        inside = np.flatnonzero(index == b)
        order = inside[np.argsort(values[inside])[::-1]]                       # its pixels, highest first
        k = int(np.searchsorted(before[b] + np.cumsum(probability[order]), q))
        levels.append(float(values[order[k]]) if k < len(order) else float(values.min()))
    return levels


#: The colour maps of the figure: 256 RGB rows each, read from matplotlib once (:func:`_colours`).
_COLOURS = {}


def _colours(name):
    if name not in _COLOURS:
        from matplotlib import colormaps

        _COLOURS[name] = (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    return _COLOURS[name]


def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size)
    except TypeError:                         # Pillow without FreeType: its fixed bitmap font
        return ImageFont.load_default()


def _region_edges(inside):
    """The pixels of a region (boolean map) that touch a pixel outside it, and their outer neighbours: a line two
    pixels wide along its border."""
    edge = np.zeros_like(inside)
    edge[1:] |= inside[1:] != inside[:-1]
    edge[:-1] |= inside[1:] != inside[:-1]
    edge[:, 1:] |= inside[:, 1:] != inside[:, :-1]
    edge[:, :-1] |= inside[:, 1:] != inside[:, :-1]
    return edge


def density_figure(image, log_density, fixations=None, title=None, masses=(0.25, 0.5, 0.75), width=1200):
    """A picture of a prediction a researcher can read: the image with the contours of the highest-density
    regions holding 25, 50 and 75 % of the fixation probability (and fixations, if given) | the log-density
    as a heat map (1000-fold range) with a colour bar.

    Drawn with PIL at the size it is written (for an 800 x 600 image 35-50 ms, and 25 ms more for the PNG, on a
    2-core machine busy with other work; matplotlib's figure and its PNG took some 350 ms).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
    log_density : ndarray, shape (H, W)
        Natural log of the probability of each pixel (``exp`` sums to one).
    fixations : ndarray, shape (n, 2), optional
        ``(x, y)`` in pixels.
    title : str, optional
    width : int
        Of the picture, in pixels.

    Returns
    -------
    PIL.Image.Image
        RGB, ``width`` pixels wide.
    """
    from PIL import Image, ImageDraw

    log_density = np.asarray(log_density, dtype=np.float64)
    height, image_width = log_density.shape
    high = float(log_density.max())
    small, big = _font(12), _font(14)
    margin, gap, bar, labels = 10, 20, 16, 64
    panel_w = (width - 2 * margin - gap - 8 - bar - labels) // 2
    panel_h = max(1, round(panel_w * height / image_width))
    top = margin + (24 if title else 0) + 20
    canvas = Image.new("RGB", (width, top + panel_h + margin), "white")
    draw = ImageDraw.Draw(canvas)
    rows = ((np.arange(panel_h) + 0.5) * height / panel_h).astype(int)          # the pixel shown at each point
    cols = ((np.arange(panel_w) + 0.5) * image_width / panel_w).astype(int)
    shown = log_density[rows][:, cols]

    # left: the image and the highest-density regions' borders
    left = np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((panel_w, panel_h), Image.BILINEAR)).copy()
    levels = highest_density_levels(log_density.astype(np.float32), masses)    # float32: the contours, a third faster
    colours = _colours("autumn")[(np.linspace(0, 0.8, len(masses)) * 255).round().astype(int)]
    for i in np.argsort(levels):                                    # 75 % first: the inner borders drawn over it
        if levels[i] < high:                                        # a flat map has no regions
            left[_region_edges(shown >= levels[i])] = colours[i]
    canvas.paste(Image.fromarray(left), (margin, top))
    if fixations is not None and len(fixations):
        for x, y in np.asarray(fixations, dtype=float):
            cx, cy = margin + x * panel_w / image_width, top + y * panel_h / height
            draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=(0, 255, 255), outline=(0, 0, 0))
    legend = [(tuple(int(v) for v in colours[i]), f"{100 * q:.0f} % of the probability") for i, q in enumerate(masses)]
    if fixations is not None and len(fixations):
        legend.append((None, f"fixations ({len(fixations)})"))
    box_h = 16 * len(legend) + 8
    x0, y0 = margin + 6, top + panel_h - box_h - 6
    draw.rectangle([x0, y0, x0 + 190, y0 + box_h], fill=(245, 245, 245), outline=(180, 180, 180))
    for k, (colour, text) in enumerate(legend):
        y = y0 + 6 + 16 * k
        if colour is None:
            draw.ellipse([x0 + 13, y + 3, x0 + 19, y + 9], fill=(0, 255, 255), outline=(0, 0, 0))
        else:
            draw.line([x0 + 6, y + 6, x0 + 26, y + 6], fill=colour, width=2)
        draw.text((x0 + 32, y), text, fill="black", font=small)
    draw.text((margin + panel_w / 2, top - 4), "highest-density regions", fill="black", font=big, anchor="md")

    # right: the log-density over a 1000-fold range, and its colour bar
    low = max(float(log_density.min()), high - np.log(1000))
    span = max(high - low, 1e-12)
    inferno = _colours("inferno")
    scaled = np.clip((shown - low) / span * 255, 0, 255).round().astype(np.uint8)
    right_x = margin + panel_w + gap
    canvas.paste(Image.fromarray(inferno[scaled]), (right_x, top))
    bar_x = right_x + panel_w + 8
    ramp = inferno[np.linspace(255, 0, panel_h).round().astype(np.uint8)]
    canvas.paste(Image.fromarray(np.repeat(ramp[:, None], bar, axis=1)), (bar_x, top))
    draw.rectangle([bar_x, top, bar_x + bar - 1, top + panel_h - 1], outline=(0, 0, 0))
    for value in np.linspace(low, high, 5):
        y = top + (high - value) / span * (panel_h - 1)
        draw.line([bar_x + bar, y, bar_x + bar + 3, y], fill="black")
        draw.text((bar_x + bar + 5, y), f"{value:.1f}", fill="black", font=small, anchor="lm")
    label = "log density, ln p per pixel (p sums to 1)"
    text = Image.new("RGB", (int(draw.textlength(label, font=small)) + 4, 16), "white")
    ImageDraw.Draw(text).text((2, 1), label, fill="black", font=small)
    rotated = text.rotate(90, expand=True)
    canvas.paste(rotated, (width - rotated.width - 2, top + max(0, (panel_h - rotated.height) // 2)))
    draw.text((right_x + panel_w / 2, top - 4), f"log-density (uniform would be {-np.log(height * image_width):.1f})",
              fill="black", font=big, anchor="md")
    if title:
        draw.text((width / 2, margin), title, fill="black", font=big, anchor="mt")
    return canvas


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


# -- a collection of images ----------------------------------------------------------------------------------------

#: The endings (in any case) of the images taken from folders and patterns; a file named on its own is read
#: whatever its ending.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

#: Figures are drawn by default for up to this many images (``--figures`` / ``--no-figures`` decide otherwise).
FIGURES_UP_TO = 10


def _is_image(path):
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _list_entries(list_file):
    """The entries of a list file: one a line, blank lines and ``#`` comments left out, relative paths taken from
    the list file's folder."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file}: no such list file")
    lines = (line.strip() for line in list_file.read_text().splitlines())
    return [line if Path(line).is_absolute() else str(list_file.parent / line)
            for line in lines if line and not line.startswith("#")]


def _expand(source):
    """The image files ``source`` names: itself (a file), a folder's images, or a glob pattern's, sorted by name."""
    path = Path(source)
    if path.is_dir():
        found, what = sorted(p for p in path.iterdir() if _is_image(p)), "folder"
    elif path.exists():
        return [path]
    elif any(sign in source for sign in "*?["):
        found, what = sorted(Path(p) for p in glob.glob(source, recursive=True) if _is_image(Path(p))), "pattern"
    else:
        raise FileNotFoundError(f"{source}: no such image, folder or pattern")
    if not found:
        raise FileNotFoundError(f"{source}: {what} without images (endings {' '.join(IMAGE_SUFFIXES)})")
    return found


def gather_images(sources, lists=()):
    """The image files of a run, in the order given, each once.

    Parameters
    ----------
    sources : list of str
        Image files, folders (their images by name, not their subfolders'), glob patterns (``**`` for any depth),
        or ``@FILE``: a list file (see ``lists``).
    lists : list of str, optional
        List files: one file, folder or pattern a line; blank lines and ``#`` comments are left out, relative
        paths are taken from the list file's folder.

    Returns
    -------
    list of Path

    Raises
    ------
    FileNotFoundError
        A source that does not exist, or a folder or pattern without images.
    ValueError
        Nothing given.
    """
    named = []
    for source in map(str, sources):
        named.extend(_list_entries(source[1:]) if source.startswith("@") else [source])
    for list_file in lists:
        named.extend(_list_entries(list_file))
    if not named:
        raise ValueError("no images given: name image files, folders, patterns or a list file (@FILE, --list FILE)")
    images, seen = [], set()
    for path in (path for source in named for path in _expand(source)):
        if path.resolve() not in seen:
            seen.add(path.resolve())
            images.append(path)
    return images


def check_names(images):
    """Raise ValueError if two images have the same stem: they would write the same outputs."""
    first = {}
    for path in images:
        other = first.setdefault(path.stem, path)
        if other != path:
            raise ValueError(f"{other} and {path} would write the same output files ({path.stem}_logdensity.npy); "
                             f"rename one or predict them in separate runs (other --out or --hdf5)")


@dataclass(frozen=True)
class Job:
    """What every image of a run is predicted with; sent with each image to the process that predicts it.

    Attributes
    ----------
    model : str
        The model file (:meth:`repro.model.DeepGazeI.save`).
    prototxt, caffemodel : str
        The network it was trained with.
    centerbias : repro.density.DensityModel or None
        The prior (None: uniform).
    out : str
        The folder of the ``.npy`` files and figures.
    figures : bool
        Draw ``<stem>_density.png``.
    hdf5 : bool
        Give the log-densities back (to the HDF5 file's writer) instead of writing ``.npy`` files.
    """
    model: str
    prototxt: str
    caffemodel: str
    centerbias: object = None
    out: str = "."
    figures: bool = False
    hdf5: bool = False

    def prior(self):
        """``"uniform"``, or the prior's class and the SHA-1 of its pickle: what identifies it."""
        if self.centerbias is None:
            return "uniform"
        return f"{type(self.centerbias).__name__} {hashlib.sha1(pickle.dumps(self.centerbias)).hexdigest()}"

    def key(self):
        """What the density of this job is loaded from: the model file (path, size, time), the network, the prior."""
        stat = Path(self.model).stat()
        return self.model, stat.st_size, stat.st_mtime_ns, self.prototxt, self.caffemodel, self.prior()

    def npy(self, path):
        """The ``.npy`` file of image ``path``."""
        return Path(self.out) / f"{Path(path).stem}_logdensity.npy"

    def figure(self, path):
        """The figure of image ``path``."""
        return Path(self.out) / f"{Path(path).stem}_density.png"


#: The density this process predicts with, ``{Job.key(): ReadoutDensity}`` (see :func:`loaded_density`).
_LOADED = {}


def loaded_density(job):
    """The DeepGaze I density of ``job``'s model, network and prior (checked by :func:`extractor_for`), loaded once
    per process; a process keeps one, releasing the previous before it loads another.

    Returns
    -------
    repro.model.ReadoutDensity
    """
    key = job.key()
    if key not in _LOADED:
        _LOADED.clear()
        model = DeepGazeI.load(job.model)
        _LOADED[key] = model.density(extractor_for(model, job.prototxt, job.caffemodel), job.centerbias)
    return _LOADED[key]


def save_png(figure, target):
    """Write a figure (:func:`density_figure`) as PNG to ``target`` (a file name or a binary file), compressed fast:
    zlib level 1 with run-length matching only (``compress_type=3``, Z_RLE), about a tenth faster than plain level
    1 and 7 % smaller; level 6 would write a fifth less in five times the time."""
    figure.save(target, format="png", compress_level=1, compress_type=3)


def _write_figure(job, path, image, log_density, points, layers):
    """Draw and write the figure of one prediction (:func:`density_figure`, :func:`save_png`), atomically."""
    prior = "uniform" if job.centerbias is None else "centre-bias"
    figure = density_figure(image, log_density, points, title=f"{Path(path).name}: DeepGaze I "
                            f"({' + '.join(layers)}), {prior} prior")
    with atomic_path(job.figure(path)) as tmp:
        save_png(figure, tmp)


def predict_image(job, path, points=None):
    """Predict one image and write its outputs: the figure (``job.figures``) and the ``.npy`` (unless ``job.hdf5``),
    each atomically, so writing them again (a task retried after its worker was lost) is harmless.

    Parameters
    ----------
    job : Job
    path : Path
    points : ndarray, shape (n, 2), optional
        Fixations ``(x, y)`` to draw.

    Returns
    -------
    ndarray, shape (H, W), or None
        The log-density with ``job.hdf5``, else None.

    Raises
    ------
    ValueError
        Naming the file: not a readable image, or one the network cannot take (too small).
    """
    image = load_image(path)
    density = loaded_density(job)
    try:
        log_density = density.log_density_of(image)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if job.figures:
        _write_figure(job, path, image, log_density, points, density.readout.layers)
    if job.hdf5:
        return log_density
    with atomic_path(job.npy(path)) as tmp, open(tmp, "wb") as handle:
        np.save(handle, log_density)
    return None


class HDF5Predictions:
    """One HDF5 file holding the log-densities of a collection of images, written one image at a time.

    Layout: at the root, one dataset per image named by its file name (``"1003.jpg"``), shape ``(H, W)``, the
    log-density as predicted (float64, natural log, ``exp`` sums to one; gzip-compressed), with the attributes
    ``source`` (the path predicted) and ``complete`` (set last: a dataset without it is from a killed run, and is
    written again). The file's attributes record what predicted it: ``format``, ``model`` and ``model_sha256``,
    ``network`` (the caffemodel), ``prior``; adding to a file of another model, network or prior is an error.
    The names are those pysaliency's ``HDF5Model`` looks up for stimulus files, so
    ``pysaliency.HDF5Model(pysaliency.FileStimuli(files), path)`` reads it as a model; with h5py,
    ``h5py.File(path, "r")["1003.jpg"][()]``.

    The file is flushed after every image: a run killed between two images leaves a readable file. HDF5 is not
    journaled, so a kill in the middle of a write can still damage it (``.npy`` outputs do not have that risk).

    Parameters
    ----------
    path : str or Path
    record : dict of str
        What predicted it (``model``, ``model_sha256``, ``network``, ``prior``).
    """

    FORMAT = "deepgaze1-repro log-densities: one dataset per image file name"

    def __init__(self, path, record):
        import h5py

        self.path, record = Path(path), {"format": self.FORMAT, **record}
        if not self.path.exists():
            with atomic_path(self.path) as tmp, h5py.File(tmp, "w") as created:
                created.attrs.update(record)
        try:
            self.file = h5py.File(self.path, "a")
        except OSError as err:
            raise ValueError(f"{self.path}: not a readable HDF5 file ({err}); move it away to start anew") from None
        found = {name: self.file.attrs.get(name) for name in record}
        if found != record:
            self.file.close()
            raise ValueError(f"{self.path} holds log-densities of another model, network or prior ({found}); this run "
                             f"is {record}: write to another --hdf5 file")

    def complete(self, image):
        """Whether the log-density of ``image`` (a path) is in the file, whole."""
        name = Path(image).name
        return name in self.file and bool(self.file[name].attrs.get("complete", False))

    def write(self, image, log_density):
        """Store the log-density of ``image`` (a path), replacing an incomplete one; flush the file."""
        name = Path(image).name
        if name in self.file:
            del self.file[name]
        dataset = self.file.create_dataset(name, data=log_density, compression="gzip", compression_opts=1,
                                           shuffle=True)
        dataset.attrs["source"] = str(image)
        dataset.attrs["complete"] = True
        self.file.flush()

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Predicted(list):
    """The outputs of the images a :func:`predict_files` call predicted (``.npy`` files, or the HDF5 file's
    dataset names), in the order they were finished.

    Attributes
    ----------
    skipped : int
        Images whose outputs were there already.
    figures : bool
        Whether figures were drawn.
    """

    def __init__(self, skipped, figures):
        super().__init__()
        self.skipped, self.figures = skipped, figures


def _done(job, path, store):
    """Whether every output of image ``path`` is there (``store``: the HDF5 file, or None)."""
    if job.figures and not job.figure(path).is_file():
        return False
    return store.complete(path) if store is not None else job.npy(path).is_file()


def _run_here(job, todo, points, finish):
    """Predict the images ``todo`` in this process, calling ``finish(path, result)`` after each."""
    for path in todo:
        finish(path, predict_image(job, path, points.get(path.stem, points.get(None))))


def _run_on_dask(job, todo, points, finish, workers, scheduler):
    """Predict the images ``todo`` on a dask cluster (:func:`repro.cluster.dask_client`), a few per worker thread
    in flight at a time (memory stays flat), calling ``finish(path, result)`` here as each is done."""
    from dask.distributed import as_completed

    from .cluster import dask_client

    with dask_client(workers, scheduler) as client:
        waiting = iter(todo)
        owner = {}

        def submit(path):
            future = client.submit(predict_image, job, path, points.get(path.stem, points.get(None)), pure=False)
            owner[future] = path
            return future

        running = as_completed([submit(path) for path in islice(waiting, 2 * max(1, sum(client.nthreads().values())))])
        for future in running:
            finish(owner.pop(future), future.result())
            future.release()
            for path in islice(waiting, 1):
                running.add(submit(path))


def _network_files(network_folder):
    """``(prototxt, caffemodel)`` of BVLC AlexNet (:func:`repro.paths.find_weights`), or FileNotFoundError."""
    network = find_weights("bvlc_alexnet", network_folder, data_dir(required=False))
    if network is None:
        raise FileNotFoundError("no deploy.prototxt + *.caffemodel of bvlc_alexnet in the data directory's weights/ "
                                f"or in {weights_dir()}; run 'python -m repro download bvlc_alexnet' or pass "
                                "--network FOLDER")
    return tuple(str(path) for path in network)


def _choose_figures(figures, count):
    """``(draw figures, what to say)`` for ``count`` images: ``figures`` if given, else up to :data:`FIGURES_UP_TO`."""
    if figures is not None:
        return bool(figures), "on (--figures)" if figures else "off (--no-figures)"
    if count <= FIGURES_UP_TO:
        return True, f"on (up to {FIGURES_UP_TO} images; --no-figures leaves them out)"
    return False, f"off (more than {FIGURES_UP_TO} images; --figures draws them)"


def _say(progress, message):
    if progress:
        print(message, file=sys.stderr)


def predict_files(sources, model_path, network_folder=None, centerbias=None, out=".", fixations=None, progress=True,
                  lists=(), hdf5=None, figures=None, workers=0, scheduler=None):
    """Predict the log-density of every image of a collection and write it, skipping the images already done.

    Parameters
    ----------
    sources : list of str or Path
        Image files, folders, glob patterns, ``@FILE`` list files (:func:`gather_images`).
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
        Folder of the ``.npy`` files and figures.
    fixations : str or Path, optional
        A CSV of fixations to draw (see :func:`read_fixation_points`).
    progress : bool
        A progress bar with its ETA, and what is done, on stderr.
    lists : list of str, optional
        List files (``--list``).
    hdf5 : str or Path, optional
        Write the log-densities into this HDF5 file (:class:`HDF5Predictions`) instead of ``.npy`` files.
    figures : bool, optional
        Draw figures; default: for up to :data:`FIGURES_UP_TO` images.
    workers : int
        Local dask worker processes (one thread each); 0 predicts in this process.
    scheduler : str, optional
        Address of a running dask scheduler (wins over ``workers``); its workers must see the same paths.

    Returns
    -------
    Predicted
        The outputs written by this call; ``skipped`` counts the images already done.
    """
    from tqdm.auto import tqdm

    images = gather_images(sources, lists)
    check_names(images)
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"no model at {model_path}: train one with 'python -m repro train' or pass --model")
    if scheduler:
        from .cluster import check_scheduler
        check_scheduler(scheduler)
    points = read_fixation_points(fixations) if fixations else {}
    figures, why = _choose_figures(figures, len(images))
    job = Job(str(model_path), *_network_files(network_folder), centerbias, str(out), figures, hdf5 is not None)
    record = {"model": Path(model_path).name, "model_sha256": file_digest(model_path), "network":
              Path(job.caffemodel).name, "prior": job.prior()}
    with HDF5Predictions(hdf5, record) if hdf5 is not None else contextlib.nullcontext() as store:
        todo = [path for path in images if not _done(job, path, store)]
        done = Predicted(len(images) - len(todo), figures)
        _say(progress, f"{len(images)} images: {len(todo)} to predict, {done.skipped} done already (skipped); "
                       f"figures {why}")
        with tqdm(total=len(todo), desc="predict", unit="img", disable=not progress or not todo) as bar:

            def finish(path, log_density):
                if store is not None:
                    store.write(path, log_density)
                done.append(path.name if store is not None else job.npy(path))
                bar.update()

            if todo and (workers or scheduler):
                _run_on_dask(job, todo, points, finish, workers, scheduler)
            else:
                _run_here(job, todo, points, finish)
    return done
