"""Feature maps of the network for DeepGaze I, cached on disk.

The paper: "After an initial downsampling, the RGB input image is fed into the Krizhevsky network
[...] We rescale all the response images that we want to include in our model to the size of the
largest layer of the network [...] Each of these responses is then individually normalized to have
unit standard deviation on the full dataset."

Here the feature maps are stored at each layer's *native* resolution; :mod:`repro.model` rescales
the per-layer weighted sums instead (exactly the same, since both are linear), and the unit-std
normalisation becomes a per-feature scale (:func:`feature_scales`) that the model folds into its
weights. That keeps the 15-layer, 3712-feature case at a few MB per image.

Cache layout: one HDF5 file per image, ``<cache>/features/<extractor key>/<image hash>.h5``, holding
one dataset per layer ``(C, h, w)`` float32. The extractor key hashes the network weights, padding
and preprocessing; the image hash is the SHA-1 of the pixels. A file is written under a temporary
name and renamed, so an interrupted extraction leaves only whole files and resumes where it stopped;
asking for more layers later adds them to the existing files.
"""
import hashlib
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from .backend import floatX
from .centerbias import resize_operator
from .network import preprocess
from .paths import atomic_path, cache_dir

#: The paper's initial downsampling factor.
DEFAULT_DOWNSAMPLE = 2
#: Caffe's per-channel ImageNet mean (B, G, R).
IMAGENET_MEAN_BGR = (104.0, 117.0, 123.0)


def resize_matrix(n_out, n_in):
    """Bilinear interpolation from ``n_in`` to ``n_out`` samples as an ``(n_out, n_in)`` float32 matrix.

    The same operator as the centre bias uses (:func:`repro.centerbias.resize_operator`): pixel
    centres aligned, edges held, rows summing to one, so constant maps stay constant.
    """
    if n_out < 1 or n_in < 1:
        raise ValueError(f"cannot resize between {n_in} and {n_out} samples")
    return resize_operator(n_out, n_in).astype(floatX)


def interpolation_matrix(target, source):
    """Linear interpolation from samples at positions ``source`` to positions ``target``.

    Held constant beyond the first and last source sample (as ``np.interp``).

    Parameters
    ----------
    target : array_like, shape (n_out,)
    source : array_like, shape (n_in,), increasing

    Returns
    -------
    ndarray, shape (n_out, n_in), float32
        Rows summing to one.
    """
    source = np.asarray(source, dtype=np.float64)
    if source.size > 1 and not np.all(np.diff(source) > 0):
        raise ValueError("source positions must increase")
    return np.stack([np.interp(target, source, column) for column in np.eye(source.size)], axis=1).astype(floatX)


def grid_shape(feature_shapes):
    """The grid of the readout: the spatial size of the largest layer (by area).

    Parameters
    ----------
    feature_shapes : sequence of (C, h, w)

    Returns
    -------
    (h, w)
    """
    return max((tuple(shape[1:]) for shape in feature_shapes), key=lambda hw: hw[0] * hw[1])


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
        """What a model records about its features, to be used for prediction later (JSON-able)."""
        return {"caffemodel_sha1": self.network.model.sha1, "caffemodel": Path(self.network.model.caffemodel).name,
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

    def geometry(self, layers):
        """:meth:`unit_positions` of each of ``layers``: the ``geometry`` of :class:`repro.model.DeepGazeI`."""
        return [self.unit_positions(layer) for layer in layers]

    def __call__(self, image, layers):
        """Feature maps of ``layers`` for one ``(H, W, 3)`` uint8 RGB image: list of ``(C, h, w)``."""
        return self.network.function(list(layers))(preprocess(image, self.mean, self.downsample))


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
    extractor : callable
        ``extractor(image, layers) -> list of (C, h, w) float32 arrays``, with an attribute
        ``cache_key`` (str) naming everything that determines its output (see
        :class:`repro.network.FeatureExtractor`).
    folder : str or Path, optional
        Where the files go (default: ``cache_dir('features', extractor.cache_key)``).
    """

    def __init__(self, extractor, folder=None):
        self.extractor = extractor
        self.folder = Path(folder) if folder is not None else cache_dir("features", extractor.cache_key)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _file(self, image_key):
        return self.folder / f"{image_key}.h5"

    def _read(self, path, layers=None):
        """``{layer: (C, h, w)}`` of the stored ``layers`` (default: all) in the file ``path``."""
        if not path.exists():
            return {}
        try:
            with h5py.File(path, "r") as f:
                names = _dataset_names(f) if layers is None else [l for l in layers if l in f]
                return {name: f[name][()] for name in names}
        except OSError as error:
            raise OSError(f"feature cache file {path} is unreadable ({error}); delete it to recompute") from None

    def _ensure(self, image, layers):
        """The cache file of ``image`` with ``layers`` in it (computing and adding what is missing),
        and the stored maps read on the way (``{layer: array}``; only those it had to read)."""
        path = self._file(image_hash(image))
        stored = self._read(path, layers)
        missing = [layer for layer in layers if layer not in stored]
        if missing:
            stored = self._read(path)                     # the file is rewritten with every layer
            stored.update(zip(missing, self.extractor(image, missing)))
            with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
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
        layers = list(layers)

        def read():
            stored = self._read(path, layers)
            return [stored[layer] for layer in layers]
        return read

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


def feature_scales(feature_maps, constant_below=1e-5):
    """``1 / std`` of every feature, over all images, after rescaling to each image's grid.

    The paper normalises every rescaled response map to unit standard deviation over the full
    dataset. The maps are rescaled here as :mod:`repro.model` does by default (stretched bilinearly
    to the largest layer of the image) to compute the statistics; the same scales serve the
    receptive-field placement, which interpolates the same maps at shifted positions.

    A feature whose standard deviation is below ``constant_below`` times its root mean square is
    treated as constant and gets scale 0: it cannot change a softmax, and dividing by what is only
    rounding noise (BVLC AlexNet's dead ``conv2`` filter 212 is the constant 0.1; after float32
    rescaling its "std" is ~1e-9) would turn that noise into saliency of thousands of nats.

    Parameters
    ----------
    feature_maps : iterable of list of ndarray
        For each image, its per-layer features ``(C_l, h_l, w_l)``.
    constant_below : float
        Relative standard deviation (std / rms) under which a feature counts as constant.

    Returns
    -------
    ndarray, shape (K,), float32
        With K the total number of features; constant features get scale 0.
    """
    total = squares = None
    count = 0
    for features in feature_maps:
        grid = grid_shape([f.shape for f in features])
        rescaled = np.concatenate([np.einsum("ij,cjk,lk->cil", resize_operator(grid[0], f.shape[1]),
                                             f.astype(np.float64), resize_operator(grid[1], f.shape[2]))
                                   for f in features])
        sums, sq = rescaled.sum(axis=(1, 2)), (rescaled ** 2).sum(axis=(1, 2))
        total, squares = (sums, sq) if total is None else (total + sums, squares + sq)
        count += grid[0] * grid[1]
    if total is None:
        raise ValueError("feature_scales needs at least one image")
    mean_square = squares / count
    std = np.sqrt(np.maximum(mean_square - (total / count) ** 2, 0))
    varies = std > constant_below * np.sqrt(mean_square)
    return np.where(varies, 1 / np.where(varies, std, 1), 0).astype(np.float32)
