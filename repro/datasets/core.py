"""The data of a fixation dataset: stimuli, fixations, their checks, splits, and what a dataset is.

Conventions (see ``docs/metrics.md`` of the project):

- Images are RGB ``uint8`` arrays of shape ``(height, width, 3)``; grayscale, palette, alpha and
  CMYK files are converted to RGB on loading (alpha is dropped). A file's EXIF orientation is applied, as
  every image viewer applies it (a phone photo held sideways is read upright). Files of more than
  :func:`max_pixels` pixels are refused from their header, before any pixel is decoded.
- A fixation ``(x, y)`` is in pixels, origin at the top-left corner of the image, x to the right,
  y down, and is scored at the pixel ``(int(x), int(y))``. Coordinates outside the image or
  missing are dropped by the loaders *explicitly*, with a count logged, never clipped.
- Times and durations are in seconds (``nan`` where the source has none).
- Whether the first fixation of each trial (the forced central start) is kept is the
  ``keep_first`` argument every loader requires.
"""
import contextlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__package__)          # one logger for the package: "repro.datasets"

__all__ = ["MAX_PIXELS", "max_pixels", "check_pixels", "Stimuli", "Fixations", "group_by_image", "load_image",
           "outside", "check_points", "check_fixations",
           "drop_invalid", "alternate_split", "subject_folds", "Archive", "Dataset"]


# --------------------------------------------------------------------------- stimuli

#: The largest image the package reads or runs through a network, in pixels (40 megapixels, e.g. 7300 x 5500):
#: AlexNet's features of an image this large take about 1 GB while they are computed, and grow with the
#: pixels. ``DEEPGAZE_MAX_PIXELS`` overrides it (:func:`max_pixels`); PIL's own guard against decompression
#: bombs (``PIL.Image.MAX_IMAGE_PIXELS`` times 2, 179 megapixels) applies beyond it.
MAX_PIXELS = 40_000_000


def max_pixels():
    """The image size limit in pixels: ``DEEPGAZE_MAX_PIXELS`` if set (a positive whole number), else
    :data:`MAX_PIXELS`."""
    value = os.environ.get("DEEPGAZE_MAX_PIXELS", "").strip()
    if not value:
        return MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"DEEPGAZE_MAX_PIXELS={value!r}: expected a positive whole number of pixels")
    return int(value)


def check_pixels(height, width, where, limit=None):
    """Raise ValueError, naming ``where``, if an image of ``height x width`` exceeds ``limit`` pixels
    (default :func:`max_pixels`)."""
    limit = max_pixels() if limit is None else int(limit)
    if int(height) * int(width) > limit:
        raise ValueError(f"{where}: {width} x {height} = {int(height) * int(width):,} pixels, more than the "
                         f"limit of {limit:,} (repro.datasets.MAX_PIXELS; set DEEPGAZE_MAX_PIXELS to allow larger "
                         f"images, or scale the image down)")


#: EXIF orientations that turn the stored picture by 90 degrees (its width and height swap when shown).
_SIDEWAYS = (5, 6, 7, 8)


def _shown_size(image):
    """``(height, width)`` of an opened image as viewers show it (its EXIF orientation applied), from its header."""
    width, height = image.size
    return (width, height) if image.getexif().get(0x0112) in _SIDEWAYS else (height, width)


@contextlib.contextmanager
def _opened(path):
    """The PIL image of a file, only its header read. PIL's warning of a large image is silenced (the package
    checks its own limit, :func:`check_pixels`); PIL's refusal of a decompression bomb, far beyond that
    limit, becomes a ValueError naming the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as err:
            raise ValueError(f"{path}: refused, too large to decode ({err}); the package's limit is "
                             f"{max_pixels():,} pixels (repro.datasets.MAX_PIXELS, DEEPGAZE_MAX_PIXELS)") from None
    with image:
        yield image


def load_image(source, max_pixels=None):
    """Read an image file as RGB, upright.

    The EXIF orientation is applied, as viewers apply it. 16-bit grayscale files (PIL modes ``I;16*``,
    ``I``) are scaled to 8 bit, ``round(v / 257)``, as their full range 0..65535 maps onto 0..255; other
    modes are converted by PIL.

    Parameters
    ----------
    source : str or Path
    max_pixels : int, optional
        Largest image read (default :func:`repro.datasets.max_pixels`), checked from the header before
        the pixels are decoded.

    Returns
    -------
    ndarray, uint8, shape (height, width, 3)

    Raises
    ------
    ValueError
        The file is not an image PIL can read (empty, truncated, another format, a folder), its
        pixels are floating point, or it is larger than the limit, naming the file.
    """
    try:
        with _opened(source) as image:
            check_pixels(*_shown_size(image), source, max_pixels)
            image.load()
            if image.getexif().get(0x0112, 1) != 1:
                image = ImageOps.exif_transpose(image)
            if image.mode.startswith("I;16") or image.mode == "I":
                grey = np.asarray(image, dtype=np.float64)
                if grey.min() < 0 or grey.max() > 65535:
                    raise ValueError(f"{source}: {image.mode} image with values outside 0..65535")
                return np.repeat(np.round(grey / 257).astype(np.uint8)[:, :, None], 3, axis=2)
            if image.mode == "F":
                raise ValueError(f"{source}: floating-point image (PIL mode F); save it as 8- or 16-bit")
            if image.mode != "RGB":
                image = image.convert("RGB")
            return np.asarray(image, dtype=np.uint8).copy()
    except (UnidentifiedImageError, IsADirectoryError, SyntaxError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{source}: not a readable image ({type(err).__name__}: {err})") from err


def _as_rgb(array, name):
    """Convert an in-memory image ``(H, W)``, ``(H, W, 1|3|4)`` to ``(H, W, 3)`` uint8."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"stimulus {name}: expected (height, width[, 1|3|4]), got shape {array.shape}")
    if array.dtype != np.uint8:
        if array.min() < 0 or array.max() > 255:
            raise ValueError(f"stimulus {name}: values outside 0..255 cannot be stored as uint8")
        array = array.astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


class Stimuli:
    """A list of images, loaded lazily.

    Parameters
    ----------
    filenames : list of str or Path, optional
        Image files; each is read only when indexed.
    images : list of ndarray, optional
        In-memory images (instead of ``filenames``).
    ids : list of str, optional
        Names of the images (default: file stems, or ``"0"``, ``"1"``, ...).
    sizes : array_like, shape (n_images, 2), optional
        ``(height, width)`` per image if known (otherwise read from file headers).

    Attributes
    ----------
    ids : list of str
    sizes : ndarray, int, shape (n_images, 2)
        ``(height, width)`` of every image.
    shapes : list of tuple
        ``(height, width, 3)`` of every image, as returned by indexing.

    Indexing with an integer returns the image ``(height, width, 3)`` uint8; with a slice, an
    integer array or a boolean mask, a new :class:`Stimuli` (see :meth:`subset`).
    """

    def __init__(self, filenames=None, images=None, ids=None, sizes=None, _loader=None):
        if (filenames is None) == (images is None) and _loader is None:
            raise ValueError("give exactly one of filenames or images")
        if filenames is not None:
            self.filenames = [Path(f) for f in filenames]
            self._images = None
            count = len(self.filenames)
        elif images is not None:
            self.filenames = None
            self._images = [_as_rgb(image, i) for i, image in enumerate(images)]
            count = len(self._images)
        else:
            self.filenames, self._images = None, None
            count = len(sizes)
        self._loader = _loader
        if ids is None:
            ids = [f.stem for f in self.filenames] if self.filenames is not None else [str(i) for i in range(count)]
        self.ids = [str(i) for i in ids]
        if len(self.ids) != count:
            raise ValueError(f"{len(self.ids)} ids for {count} stimuli")
        if sizes is None:
            if self._images is not None:
                sizes = [image.shape[:2] for image in self._images]
            else:
                sizes = [_header_size(f) for f in self.filenames]
        self.sizes = np.asarray(sizes, dtype=int).reshape(count, 2)

    @property
    def shapes(self):
        return [(int(h), int(w), 3) for h, w in self.sizes]

    def __len__(self):
        return len(self.ids)

    def _load(self, index):
        if self._images is not None:
            return self._images[index]
        if self._loader is not None:
            return self._loader(index)
        image = load_image(self.filenames[index])
        if image.shape[:2] != tuple(self.sizes[index]):
            raise ValueError(f"{self.filenames[index]}: size {image.shape[:2]} differs from the "
                             f"recorded {tuple(self.sizes[index])}")
        return image

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            if not -len(self) <= index < len(self):
                raise IndexError(f"stimulus index {index} out of range for {len(self)} stimuli")
            return self._load(int(index) % len(self))
        return self.subset(index)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def subset(self, indices):
        """Return the stimuli at ``indices`` (slice, integer array or boolean mask) as a new Stimuli."""
        indices = np.atleast_1d(np.arange(len(self))[indices])
        ids = [self.ids[i] for i in indices]
        if self.filenames is not None:
            return Stimuli(filenames=[self.filenames[i] for i in indices], ids=ids, sizes=self.sizes[indices])
        if self._images is not None:
            return Stimuli(images=[self._images[i] for i in indices], ids=ids)
        parent = self._loader
        return Stimuli(ids=ids, sizes=self.sizes[indices], _loader=lambda i: parent(int(indices[i])))

    def __repr__(self):
        return f"Stimuli({len(self)} images)"


def _header_size(filename):
    """``(height, width)`` from an image file's header as viewers show it (EXIF orientation applied), without
    decoding the pixels."""
    try:
        with _opened(filename) as image:
            return _shown_size(image)
    except FileNotFoundError:
        raise FileNotFoundError(f"stimulus file not found: {filename}") from None


# --------------------------------------------------------------------------- fixations

class Fixations:
    """Fixations of a dataset, one entry per fixation, as parallel arrays.

    Parameters
    ----------
    x, y : array_like, float, shape (n_fixations,)
        Pixel coordinates (origin top-left).
    n : array_like, int, shape (n_fixations,)
        Index of the image in the :class:`Stimuli`.
    subject : array_like, int, optional
        Observer index (default 0).
    t : array_like, float, optional
        Onset time in seconds (default nan).
    duration : array_like, float, optional
        Duration in seconds (default nan).
    index_in_trial : array_like, int, optional
        Position of the fixation in its trial, 0 for the first recorded fixation (default 0).
    trial : array_like, int, optional
        Trial (scanpath) index; default: one trial per (image, subject) pair.
    """
    fields = ("x", "y", "n", "subject", "t", "duration", "index_in_trial", "trial")

    def __init__(self, x, y, n, subject=None, t=None, duration=None, index_in_trial=None, trial=None):
        self.x = np.asarray(x, dtype=float).ravel()
        count = len(self.x)

        def column(name, value, dtype, default):
            if value is None:
                return np.full(count, default, dtype=dtype)
            value = (_whole_numbers(name, value) if dtype is int else np.asarray(value, dtype=dtype)).ravel()
            if len(value) != count:
                raise ValueError(f"fixation arrays differ in length: {len(value)} vs {count} x-values")
            return value

        self.y = column("y", y, float, np.nan)
        self.n = column("n", n, int, 0)
        if (self.n < 0).any():
            i = np.flatnonzero(self.n < 0)[0]
            raise ValueError(f"fixation #{i} has image index n={self.n[i]}; image indices are >= 0")
        self.subject = column("subject", subject, int, 0)
        self.t = column("t", t, float, np.nan)
        self.duration = column("duration", duration, float, np.nan)
        self.index_in_trial = column("index_in_trial", index_in_trial, int, 0)
        if trial is None:
            _, trial = np.unique(np.stack([self.n, self.subject]), axis=1, return_inverse=True)
        self.trial = column("trial", trial, int, 0)

    def __len__(self):
        return len(self.x)

    @property
    def x_int(self):
        """Pixel column of each fixation, ``int(x)``, shape (n_fixations,)."""
        return self.x.astype(int)

    @property
    def y_int(self):
        """Pixel row of each fixation, ``int(y)``, shape (n_fixations,)."""
        return self.y.astype(int)

    @property
    def subjects(self):
        """Sorted distinct subject indices."""
        return np.unique(self.subject)

    @property
    def images(self):
        """Sorted distinct image indices that have fixations."""
        return np.unique(self.n)

    def filter(self, mask):
        """Return the fixations selected by a boolean mask or index array."""
        return Fixations(**{name: getattr(self, name)[mask] for name in self.fields})

    __getitem__ = filter

    def for_images(self, images):
        """Fixations on the image index or indices ``images`` (image indices unchanged)."""
        return self.filter(np.isin(self.n, images))

    def for_subjects(self, subjects):
        """Fixations of the subject index or indices ``subjects``."""
        return self.filter(np.isin(self.subject, subjects))

    def remap_images(self, indices):
        """Fixations on the images ``indices`` with ``n`` renumbered to positions in ``indices``.

        Matches ``Stimuli.subset(indices)``.
        """
        indices = np.asarray(indices, dtype=int)
        position = np.full(max(self.n.max(initial=0), indices.max(initial=0)) + 1, -1)
        position[indices] = np.arange(len(indices))
        kept = self.filter(np.isin(self.n, indices))
        kept.n = position[kept.n]
        return kept

    @classmethod
    def concatenate(cls, parts):
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.fields})

    def __repr__(self):
        return (f"Fixations({len(self)} fixations on {len(self.images)} images "
                f"by {len(self.subjects)} subjects)")


def _number_or_nan(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _whole_numbers(name, values):
    """``values`` as an int array; ValueError naming the field and the first value that is not a whole number
    (``2.5``, nan, inf, text), never truncated."""
    array = np.asarray(values)
    if array.dtype.kind in "iub":
        return array.astype(int)
    if array.dtype.kind in "fc":
        as_float = array.astype(float)
    else:                                       # text or objects: each value on its own
        as_float = np.array([_number_or_nan(v) for v in array.ravel()]).reshape(array.shape)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(as_float) | (as_float != np.round(as_float)) | (np.abs(as_float) > 2 ** 53)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        raise ValueError(f"fixation field {name!r}: #{i} is {array.ravel()[i]!r}, not a whole number (an index)")
    return as_float.astype(int)


def group_by_image(n):
    """Group fixations by image.

    Parameters
    ----------
    n : ndarray of int, shape (n_fixations,)
        Image index of every fixation (``Fixations.n``).

    Returns
    -------
    images : ndarray of int
        Sorted distinct image indices.
    groups : list of ndarray of int
        For every image, the indices of its fixations (in their original order).
    """
    order = np.argsort(n, kind="stable")
    images, starts = np.unique(n[order], return_index=True)
    return images, np.split(order, starts[1:])


def outside(x, y, height, width):
    """Mask of the points ``(x, y)`` not inside their ``height x width`` image; nan and inf count as outside.

    A point is inside when ``0 <= x < width`` and ``0 <= y < height``: it is scored at pixel
    ``(int(y), int(x))``. All arguments broadcast (e.g. one size per point).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        return ~((x >= 0) & (x < width) & (y >= 0) & (y < height))


def _refuse_outside(where, x, y, heights, widths, images=None):
    """Raise ValueError naming the first point outside its image (``heights``, ``widths`` broadcast to it)."""
    bad = outside(x, y, heights, widths)
    if bad.any():
        i = np.flatnonzero(bad)[0]
        height, width = (int(np.broadcast_to(v, bad.shape)[i]) for v in (heights, widths))
        on = f" on image {images[i]}" if images is not None else ""
        raise ValueError(f"{where}: {bad.sum()} fixation(s) missing or outside their image, e.g. #{i} at "
                         f"(x={x[i]}, y={y[i]}){on} of (height, width) = ({height}, {width})")


def check_points(x, y, shape, where):
    """Raise ValueError naming the first point ``(x, y)`` outside an image of ``shape = (height, width)``."""
    _refuse_outside(where, np.asarray(x, dtype=float), np.asarray(y, dtype=float), shape[0], shape[1])


def _image_sizes(fixations, sizes, where):
    """``(height, width)`` of each fixation's image, shape (n_fixations, 2); ValueError for an unknown image."""
    sizes = np.asarray(sizes).reshape(-1, 2)
    unknown = fixations.n >= len(sizes)
    if unknown.any():
        i = np.flatnonzero(unknown)[0]
        raise ValueError(f"{where}: fixation #{i} is on image {fixations.n[i]}, but there are only "
                         f"{len(sizes)} images (valid indices 0..{len(sizes) - 1})")
    return sizes[fixations.n]


def check_fixations(fixations, sizes, where="fixations", empty_ok=True):
    """Raise ValueError unless every fixation is on an image of ``sizes``, with finite coordinates inside it.

    The one check of fixations against their images: loaders, centre bias, gold standard, metrics and
    training call it (or :func:`check_points` for the fixations of one image).

    Parameters
    ----------
    fixations : Fixations
    sizes : array_like, shape (n_images, 2)
        ``(height, width)`` per image index.
    where : str
        What is checked, for the message (e.g. a file name or a function).
    empty_ok : bool
        If False, no fixations at all is an error too (nothing to estimate from).
    """
    if not empty_ok and not len(fixations):
        raise ValueError(f"{where}: no fixations (an empty Fixations); at least one is needed")
    shape = _image_sizes(fixations, sizes, where)
    _refuse_outside(where, fixations.x, fixations.y, shape[:, 0], shape[:, 1], fixations.n)


def _inside(fixations, sizes, where):
    shape = _image_sizes(fixations, sizes, where)
    return ~outside(fixations.x, fixations.y, shape[:, 0], shape[:, 1])


def drop_invalid(fixations, sizes, source="fixations"):
    """Drop fixations with missing or out-of-image coordinates, logging how many.

    Parameters
    ----------
    fixations : Fixations
    sizes : array_like, shape (n_images, 2)
        ``(height, width)`` per image index.
    source : str
        Name used in the log message.

    Returns
    -------
    Fixations
    """
    inside = _inside(fixations, sizes, source)
    missing = np.isnan(fixations.x) | np.isnan(fixations.y)
    if (~inside).any():
        log.warning("%s: dropped %d fixation(s) with missing coordinates and %d outside their image",
                    source, missing.sum(), (~inside & ~missing).sum())
    return fixations.filter(inside)


def _positions_in_trials(trial, order_key):
    """Index of every entry within its trial, ordered by ``order_key``."""
    order = np.lexsort((order_key, trial))
    sorted_trial = trial[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_trial)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(trial)]))
    positions = np.empty(len(trial), dtype=int)
    positions[order] = np.arange(len(trial)) - run_start
    return positions


# --------------------------------------------------------------------------- splits

def alternate_split(stimuli):
    """A deterministic half split: images sorted by id, alternately train and test.

    The first, third, ... image in id order trains, the others test, so both halves spread over
    the whole collection (of ``n`` images, ``ceil(n / 2)`` train).

    Parameters
    ----------
    stimuli : Stimuli

    Returns
    -------
    train, test : ndarray of int
        Image indices, each sorted.
    """
    order = np.argsort(np.asarray(stimuli.ids), kind="stable")
    return np.sort(order[0::2]), np.sort(order[1::2])


def subject_folds(fixations):
    """Leave-one-subject-out folds: one ``(train_mask, test_mask)`` per subject, in subject order.

    Returns
    -------
    list of tuple of ndarray of bool, each shape (n_fixations,)
    """
    return [(fixations.subject != s, fixations.subject == s) for s in fixations.subjects]


# --------------------------------------------------------------------------- datasets

@dataclass(frozen=True)
class Archive:
    """Where a dataset comes from: its official archive, and how the archive maps onto the layout its loader reads.

    :func:`repro.download.download_dataset` fetches it, checks it and unpacks it.

    Attributes
    ----------
    url : str
        The official archive (zip).
    checksum : str or None
        ``"<algorithm>:<hex>"`` of the archive, where it is fixed (GitHub's archives are not byte-stable).
    members : tuple of (pattern, folder)
        Archive members whose path (below the archive's top folder, with ``strip_root``) matches ``pattern``
        (:mod:`fnmatch`) go to ``folder`` under their own name.
    manifest : str or None
        ``repro/manifests/<manifest>``: ``sha256  relative path`` of every file the layout must hold.
    count : int or None
        Number of images the layout must hold (where no manifest lists them).
    strip_root : bool
        The archive holds one top folder (as GitHub's do) that ``members`` do not name.
    note : str
        What the user must add by hand, printed after the download.
    """

    url: str
    checksum: object
    members: tuple
    manifest: object = None
    count: object = None
    strip_root: bool = False
    note: str = ""


@dataclass(frozen=True)
class Dataset:
    """What the package knows of one dataset: its folder, loader, split, name in titles and official source.

    Every dataset's file (``repro/datasets/osie.py``, ...) defines one, ``DATASET``; the registry
    :data:`repro.datasets.DATASETS` holds them by name.

    Attributes
    ----------
    name : str
        Its key in the registry and the value of the ``--dataset`` options.
    label : str
        Its name in figure titles and results records, e.g. ``"OSIE (Xu et al. 2014)"``.
    split : callable
        ``split(stimuli) -> (train, test)``: the image indices (ndarray of int) of the two halves.
    load : callable
        ``load(folder, *, keep_first) -> (Stimuli, Fixations)``, ``folder`` being the one of :attr:`folders`
        found in the data directory. A dataset without folders is made, not read: its loader gets
        ``folder=None`` and takes what it is made from as further keyword arguments (the demonstration data:
        :func:`repro.datasets.demo.load_demo`).
    folders : tuple of str
        Its folder in the data directory, the first of these that exists (the first is the whole
        dataset, where :func:`repro.download.download_dataset` puts it; later ones may hold a part of it);
        empty for the demonstration data.
    fixation_file : str or None
        The file of its fixations in its folder (its checksum names the cached centre-bias template of
        ``python -m repro predict --centerbias NAME``).
    center_bias_frame : tuple of int or None
        ``(height, width)`` of the common frame its centre bias is fitted in (a KDE for images of mixed
        sizes, :func:`repro.centerbias.fit_center_bias`); None: each image's own size.
    subset_label : str or None
        The label when its folder is not the first of ``folders`` (a part of the dataset).
    forced_start : bool
        Its trials begin with a fixation the observers were made to make (near the centre), which
        ``keep_first=False`` drops. False for the demonstration data: every fixation is sampled from a
        density, and its loader ignores ``keep_first``.
    source : Archive or None
        Its official archive, for ``python -m repro download NAME``; None: it cannot be downloaded.
    """
    name: str
    label: str
    split: object
    load: object
    folders: tuple = ()
    fixation_file: str = None
    center_bias_frame: tuple = None
    subset_label: str = None
    forced_start: bool = True
    source: Archive = None

    def label_of(self, folder, keep_first=True):
        """The label of the data loaded from ``folder`` (None: no folder) with ``keep_first``.

        :attr:`subset_label` unless ``folder`` is the first of :attr:`folders`, followed by
        ``", first fixation dropped"`` where ``keep_first`` is False and the trials have a forced start.
        """
        label = self.label
        if self.subset_label is not None and folder is not None and Path(folder).name != self.folders[0]:
            label = self.subset_label
        return label if keep_first or not self.forced_start else f"{label}, first fixation dropped"
