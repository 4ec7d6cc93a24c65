"""Feature maps of the network for DeepGaze I, cached on disk.

The paper: "After an initial downsampling, the RGB input image is fed into the Krizhevsky network
[...] We rescale all the response images that we want to include in our model to the size of the
largest layer of the network [...] Each of these responses is then individually normalized to have
unit standard deviation on the full dataset."

Here the feature maps are stored at each layer's *native* resolution; :mod:`repro.model` interpolates
the per-layer weighted sums to the grid of the largest layer instead (exactly the same, since both
are linear), and the unit-std normalisation becomes a per-feature scale (:func:`feature_scales`,
computed on that grid) that the model folds into its weights. That keeps the 15-layer,
3712-feature case at 24 MB per OSIE image. Where the units of each layer sit on the image, and which
layer is the grid, the extractor says (:meth:`FeatureExtractor.geometry`).

Cache layout: one HDF5 file per image, ``<cache>/features/<extractor key>/<image hash>.h5``, holding
one dataset per layer ``(C, h, w)`` float32. The extractor key hashes the network weights, padding
and preprocessing; the image hash is the SHA-1 of the pixels. A file is written under a temporary
name and renamed, so an interrupted extraction leaves only whole files and resumes where it stopped;
asking for more layers later adds them to the existing files. Feature scales of a layer over a
set of images are cached beside them, in ``<extractor key>/scales/`` (:meth:`FeatureStore.feature_scales`).
"""
import contextlib
import fcntl
import hashlib
import json
import logging
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from .caffe import network_digest
from .datasets import check_pixels
from .network import preprocess
from .paths import atomic_path, cache_dir
from .resampling import Geometry

__all__ = ["DEFAULT_DOWNSAMPLE", "IMAGENET_MEAN_BGR", "image_hash", "FeatureExtractor", "FeatureStore",
           "feature_statistics", "feature_scales"]

log = logging.getLogger(__name__)

#: The paper's initial downsampling factor.
DEFAULT_DOWNSAMPLE = 2
#: Caffe's per-channel ImageNet mean (B, G, R).
IMAGENET_MEAN_BGR = (104.0, 117.0, 123.0)


def image_hash(image):
    """SHA-1 of an image's shape and pixels (``(H, W, 3)`` uint8)."""
    image = np.ascontiguousarray(image)
    digest = hashlib.sha1(f"{image.shape}{image.dtype}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class FeatureExtractor:
    """Images to feature maps, as the paper: downsample, Caffe preprocessing, network in ``full`` mode.

    Parameters
    ----------
    network : repro.network.Network
        Usually built with ``padding='full'`` (the paper); ``'caffe'`` works too.
    mean : sequence of 3 floats (B, G, R) or ndarray (3, h, w)
        Subtracted from the BGR input (Caffe's per-channel ImageNet mean by default).
    downsample : int
        Initial downsampling factor (2 in the paper).

    Attributes
    ----------
    cache_key : str
        SHA-1 of the caffemodel's SHA-1, the prototxt, the padding, the mean and the downsampling:
        everything that determines the features of an image.
    """

    def __init__(self, network, mean=IMAGENET_MEAN_BGR, downsample=DEFAULT_DOWNSAMPLE):
        self.network = network
        self.mean = np.asarray(mean, dtype=np.float32)
        self.downsample = int(downsample)
        digest = hashlib.sha1()
        for part in (network.model.sha1, Path(network.model.prototxt).read_bytes(), network.padding,
                     self.mean.tobytes(), str(self.mean.shape), str(self.downsample)):
            digest.update(part if isinstance(part, bytes) else str(part).encode())
        self.cache_key = digest.hexdigest()

    @property
    def metadata(self):
        """What a model records about its features, to be used for prediction later (JSON-able): the weights
        (``caffemodel_sha1``; ``caffemodel`` is None for a network built in memory,
        :func:`repro.planted.random_alexnet`), the network the prototxt describes up to its last layer built
        (``network_sha1``, :func:`repro.caffe.network_digest`), padding, downsampling and mean."""
        caffemodel = self.network.model.caffemodel
        return {"caffemodel_sha1": self.network.model.sha1, "caffemodel": caffemodel and Path(caffemodel).name,
                "network_sha1": network_digest(self.network.model.layers),
                "padding": self.network.padding, "downsample": self.downsample,
                "mean": self.mean.tolist() if self.mean.ndim == 1 else "mean image"}

    def unit_positions(self, layer):
        """Where ``layer``'s units look in the original image: ``(first, step)`` in pixels.

        Unit ``i`` (along rows or columns) has its receptive field centred at ``first + i * step``,
        in continuous image coordinates (pixel ``j`` spans ``[j, j + 1)``), from
        :meth:`repro.network.Network.receptive_field` and the initial downsampling (input pixel ``k``
        is the mean of image pixels ``k * d`` ... ``(k + 1) * d - 1``). In ``full`` padding the first
        centres lie outside the image (negative).
        """
        size, stride, offset = self.network.receptive_field(layer)
        return (offset + (size - 1) / 2 + 0.5) * self.downsample, float(stride * self.downsample)

    @cached_property
    def grid_layer(self):
        """The network's largest layer, the readout's grid: the first layer of the smallest stride
        (AlexNet: ``conv1``; layers without a receptive field, such as inner products, are skipped)."""
        strides = {}
        for layer in self.network.layer_names:
            try:
                strides[layer] = self.network.receptive_field(layer).stride
            except ValueError:
                continue
        return min(strides, key=strides.get)

    def geometry(self, layers):
        """The :class:`repro.resampling.Geometry` of a readout of ``layers``: :meth:`unit_positions`
        of each of them and of :attr:`grid_layer`."""
        return Geometry(tuple(self.unit_positions(layer) for layer in layers), self.unit_positions(self.grid_layer))

    def features(self, image, layers):
        """Feature maps of ``layers`` for one ``(H, W, 3)`` uint8 RGB image: list of ``(C, h, w)``, computed
        (:meth:`FeatureStore.features` gives the same, cached). With a per-channel mean the preprocessing runs
        inside the network's graph (:meth:`repro.network.Network.image_function`, the same input to the bit as
        :func:`repro.network.preprocess`); a mean image or a non-uint8 array goes through :func:`preprocess`.

        Raises ValueError for an image too small for the network (a layer with no rows or columns).
        """
        self.check_size(np.shape(image)[:2])
        if self.mean.ndim == 1 and np.asarray(image).dtype == np.uint8:   # preprocessing inside the graph
            return self.network.image_function(list(layers), self.mean, self.downsample)(image)
        return self.network.function(list(layers))(preprocess(image, self.mean, self.downsample))

    def output_shapes(self, image_hw, layers):
        """``{layer: (C, h, w)}``: the shapes :meth:`features` gives ``layers`` for an image of ``image_hw`` pixels."""
        shapes = self.network.output_shapes(tuple(int(n) // self.downsample for n in image_hw))
        return {layer: shapes[layer] for layer in layers}

    def check_size(self, image_hw):
        """Raise ValueError unless every layer has at least one unit per side for an image of ``image_hw``, and
        the image is within the package's pixel limit (:func:`repro.datasets.max_pixels`)."""
        check_pixels(*image_hw, "an image given to the network")
        network_hw = tuple(int(n) // self.downsample for n in image_hw)
        shapes = self.network.output_shapes(network_hw) if min(network_hw) > 0 else {"input": (3,) + network_hw}
        small = [(layer, shape) for layer, shape in shapes.items() if min(shape[1:]) < 1]
        if small:
            layer, shape = small[0]
            raise ValueError(f"an image of (height, width) = {tuple(image_hw)} pixels is too small for "
                             f"{self.network.model.name} (downsampled by {self.downsample}): its {layer} would "
                             f"have shape {shape}")


def _dataset_names(f):
    """Every dataset of an HDF5 file by its full path: a layer name with ``/`` (GoogLeNet's
    ``inception_4e/output``) is stored as dataset ``output`` in group ``inception_4e``."""
    names = []
    f.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    return names


class FeatureStore:
    """The on-disk features of one extractor (network + preprocessing).

    Parameters
    ----------
    extractor : repro.features.FeatureExtractor
        Or anything with its ``features(image, layers) -> list of (C, h, w) float32 arrays`` and an attribute
        ``cache_key`` (str) naming everything that determines its output (see
        :class:`repro.features.FeatureExtractor`).
    folder : str or Path, optional
        Where the files go (default: ``cache_dir('features', extractor.cache_key)``).
    """

    def __init__(self, extractor, folder=None):
        self.extractor = extractor
        self.folder = Path(folder) if folder is not None else cache_dir("features", extractor.cache_key)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _file(self, image_key):
        return self.folder / f"{image_key}.h5"

    def _read(self, path, layers=None, image_hw=None):
        """``{layer: (C, h, w)}`` of the stored ``layers`` (default: all) in the file ``path``; ``{}`` (with a
        warning naming the file, which is then rebuilt) if it is damaged, or holds another image's maps (its
        recorded image hash, or the shape each layer has for an image of ``image_hw`` pixels, differ)."""
        if not path.exists():
            return {}
        try:
            with h5py.File(path, "r") as f:
                names = _dataset_names(f) if layers is None else [l for l in layers if l in f]
                stored = {name: f[name][()] for name in names}
                recorded = f.attrs.get("image")
        except (OSError, KeyError) as error:
            log.warning("%s: damaged feature cache file (%s); computing its features again", path, error)
            return {}
        problem = self._mismatch(path, stored, recorded, image_hw)
        if problem:
            log.warning("%s: %s; computing its features again", path, problem)
            return {}
        return stored

    def _mismatch(self, path, stored, recorded, image_hw):
        """Why the maps ``stored`` in ``path`` are not those of its image, of ``image_hw`` pixels (None if they are,
        or nothing says)."""
        if recorded is not None and str(recorded) != path.stem:
            return f"holds the maps of another image ({recorded})"
        shapes = getattr(self.extractor, "output_shapes", None)
        if image_hw is None or shapes is None or not stored:
            return None
        expected = shapes(image_hw, list(stored))
        wrong = [(layer, stored[layer].shape, expected[layer]) for layer in stored
                 if stored[layer].shape != expected[layer] or stored[layer].dtype != np.float32]
        if wrong:
            layer, found, shape = wrong[0]
            return f"layer {layer!r} has shape {found}, the network gives {shape} for this image (damaged or swapped)"
        return None

    @contextlib.contextmanager
    def _locked(self):
        """Hold the store's lock file (``<store>/.lock``): one process at a time adds layers to a file."""
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _ensure(self, image, layers):
        """The cache file of ``image`` with ``layers`` in it (computing and adding what is missing),
        and the stored maps read on the way (``{layer: array}``; only those it had to read).

        Safe with concurrent writers: the maps are computed unlocked, then the file is read again and
        rewritten with every layer under the store's lock, so layers another process added stay."""
        key = image_hash(image)
        path = self._file(key)
        stored = self._read(path, layers, np.shape(image)[:2])
        missing = [layer for layer in layers if layer not in stored]
        if missing:
            computed = dict(zip(missing, self.extractor.features(image, missing)))
            with self._locked():
                stored = {**self._read(path, image_hw=np.shape(image)[:2]), **computed}
                with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
                    f.attrs["image"] = key
                    for name, array in stored.items():
                        f[name] = np.asarray(array, dtype=np.float32)
        return path, stored

    def features(self, image, layers):
        """Feature maps of one image, from the cache or computed (and then stored).

        Parameters
        ----------
        image : ndarray, shape (H, W, 3), uint8 RGB
        layers : list of str

        Returns
        -------
        list of ndarray, each (C_l, h_l, w_l) float32, in the order of ``layers``
        """
        _, stored = self._ensure(image, layers)
        return [stored[layer] for layer in layers]

    def reader(self, image, layers):
        """A function that reads the image's ``layers`` from disk each time it is called.

        For data too large to hold in memory (e.g. all 15 AlexNet layers of hundreds of images):
        the maps are computed and cached now if missing, and read back on demand.

        Returns
        -------
        callable
            ``() -> list of ndarray``, each ``(C_l, h_l, w_l)``, in the order of ``layers``.
        """
        path, _ = self._ensure(image, layers)
        layers, image_hw = list(layers), np.shape(image)[:2]      # not the image: readers stand for many

        def read():
            stored = self._read(path, layers, image_hw)
            missing = [layer for layer in layers if layer not in stored]
            if missing:
                raise ValueError(f"{path}: feature cache file damaged or replaced while in use (layers {missing}); "
                                 f"run again to compute them anew")
            return [stored[layer] for layer in layers]
        return read

    def feature_scales(self, images, layers, progress=True):
        """:func:`feature_scales` of ``layers`` over ``images``, computed once per layer and image set.

        The grid is the network's largest layer whatever the readout reads, so a feature's scale
        depends only on its layer and the images: every fold and layer subset of an experiment
        reuses the same per-layer files, ``<store>/scales/<sha1 of layer and image hashes>.npy``.

        Parameters
        ----------
        images : sequence of ``(H, W, 3)`` uint8 images (e.g. the training images)
        layers : list of str
        progress : bool

        Returns
        -------
        ndarray, shape (K,), float32
        """
        images = list(images)
        hashes = sorted(image_hash(image) for image in images)
        geometry = self.extractor.geometry(layers)
        scales = []
        for layer, units in zip(layers, geometry.units):
            path = self.folder / "scales" / f"{hashlib.sha1(json.dumps([layer, hashes]).encode()).hexdigest()}.npy"
            found = _load_scales(path) if path.is_file() else None
            if found is None:
                maps = ((image.shape[:2], self.features(image, [layer]))
                        for image in tqdm(images, desc=f"feature scales {layer}", disable=not progress, unit="img"))
                found = feature_scales(maps, Geometry((units,), geometry.grid))
                with atomic_path(path) as tmp, open(tmp, "wb") as f:
                    np.save(f, found)
            scales.append(found)
        return np.concatenate(scales)

    def extract(self, stimuli, layers, progress=True):
        """Make sure every image of ``stimuli`` has ``layers`` cached (resumable).

        Parameters
        ----------
        stimuli : sequence of ``(H, W, 3)`` uint8 images (e.g. :class:`repro.datasets.Stimuli`)
        layers : list of str
        progress : bool
            Show a progress bar.
        """
        for index in tqdm(range(len(stimuli)), desc=f"features {','.join(layers)}", disable=not progress,
                          unit="img"):
            self.features(stimuli[index], layers)


def _load_scales(path):
    """The feature scales cached in ``path``, or None (with a warning naming it) if the file is damaged."""
    try:
        scales = np.load(path)
        if scales.ndim == 1 and np.isfinite(scales).all():
            return scales
        problem = f"shape {scales.shape}, finite: {bool(np.isfinite(scales).all())}"
    except (OSError, ValueError, EOFError) as err:
        problem = f"{type(err).__name__}: {err}"
    log.warning("%s: damaged feature-scales cache (%s); computing the scales again", path, problem)
    return None


def feature_statistics(image_shape, features, geometry):
    """Sums over the readout grid's cells of every feature of one image, and of its square.

    Parameters
    ----------
    image_shape : (H, W)
    features : list of ndarray, each (C_l, h_l, w_l)
    geometry : repro.resampling.Geometry
        Of the layers of ``features``.

    Returns
    -------
    sums, squares : ndarray, shape (K,), float64
    cells : int
        Number of cells of the image's grid.
    """
    grid = geometry.readout_grid(image_shape, [f.shape[1:] for f in features])
    sums, squares = [], []
    for maps, rows, cols in zip(features, grid.rows, grid.cols):
        on_grid = (rows @ np.asarray(maps, np.float32) @ cols.T).astype(np.float64)     # (C, h, w)
        sums.append(on_grid.sum(axis=(1, 2)))
        squares.append((on_grid ** 2).sum(axis=(1, 2)))
    return np.concatenate(sums), np.concatenate(squares), grid.shape[0] * grid.shape[1]


def feature_scales(images, geometry, constant_below=1e-5):
    """``1 / std`` of every feature, over all cells of the readout grid of all images.

    The paper normalises every rescaled response map to unit standard deviation over the full
    dataset; the maps here are those the readout weights, interpolated to the grid's cells
    (:class:`repro.resampling.ReadoutGrid`).

    A feature whose standard deviation is below ``constant_below`` times its root mean square is
    treated as constant and gets scale 0: it cannot change a softmax, and dividing by what is only
    rounding noise (BVLC AlexNet's dead ``conv2`` filter 212 is the constant 0.1; after float32
    interpolation its "std" is ~1e-9) would turn that noise into saliency of thousands of nats.

    Parameters
    ----------
    images : iterable of ((H, W), list of ndarray)
        For each image, its size and its per-layer features ``(C_l, h_l, w_l)``.
    geometry : repro.resampling.Geometry
        Of the layers of the features.
    constant_below : float
        Relative standard deviation (std / rms) under which a feature counts as constant.

    Returns
    -------
    ndarray, shape (K,), float32
        With K the total number of features; constant features get scale 0.
    """
    total = squares = None
    count = 0
    for shape, features in images:
        sums, sq, cells = feature_statistics(shape, features, geometry)
        total, squares = (sums, sq) if total is None else (total + sums, squares + sq)
        count += cells
    if total is None:
        raise ValueError("feature_scales needs at least one image")
    mean_square = squares / count
    std = np.sqrt(np.maximum(mean_square - (total / count) ** 2, 0))
    varies = std > constant_below * np.sqrt(mean_square)
    return np.where(varies, 1 / np.where(varies, std, 1), 0).astype(np.float32)
