"""Fixation datasets: stimuli, fixations, loaders, pysaliency HDF5 files and splits.

Conventions (see ``docs/metrics.md`` of the project):

- Images are RGB ``uint8`` arrays of shape ``(height, width, 3)``; grayscale, palette, alpha and
  CMYK files are converted to RGB on loading (alpha is dropped).
- A fixation ``(x, y)`` is in pixels, origin at the top-left corner of the image, x to the right,
  y down, and is scored at the pixel ``(int(x), int(y))``. Coordinates outside the image or
  missing are dropped by the loaders *explicitly*, with a count logged, never clipped.
- Times and durations are in seconds (``nan`` where the source has none).
- Whether the first fixation of each trial (the forced central start) is kept is the
  ``keep_first`` argument every loader requires.

pysaliency's HDF5 layout (``attrs['type']`` and ``attrs['version']`` as bytes) is read for
``Stimuli`` 1.0/1.1, ``FileStimuli`` 1.0–2.1, ``Fixations`` 1.0–1.2 and ``FixationTrains``
1.0–1.3; :func:`write_hdf5` writes ``FileStimuli`` 2.1 / ``Stimuli`` 1.1 and ``Fixations`` 1.0,
which pysaliency 0.2.22 reads back.
"""
import csv
import gzip
import json
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..paths import atomic_path

log = logging.getLogger(__package__)          # the package's logger, "repro.datasets", as before

__all__ = ["Stimuli", "Fixations", "group_by_image", "load_image", "outside", "check_points", "check_fixations",
           "drop_invalid", "load_osie",
           "load_fixation_table", "load_mit1003", "MIT1003_COLUMNS", "DATASET_FOLDERS", "dataset_folder",
           "load_dataset", "read_table", "float_column", "read_hdf5", "write_hdf5",
           "mit1003_split", "osie_split", "subject_folds"]


# --------------------------------------------------------------------------- stimuli

def load_image(source):
    """Read an image file as RGB.

    16-bit grayscale files (PIL modes ``I;16*``, ``I``) are scaled to 8 bit, ``round(v / 257)``, as
    their full range 0..65535 maps onto 0..255; other modes are converted by PIL.

    Parameters
    ----------
    source : str or Path

    Returns
    -------
    ndarray, uint8, shape (height, width, 3)

    Raises
    ------
    ValueError
        The file is not an image PIL can read (empty, truncated, another format, a folder), or its
        pixels are floating point, naming the file.
    """
    try:
        with Image.open(source) as image:
            image.load()
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
    """``(height, width)`` from an image file's header, without decoding the pixels."""
    try:
        with Image.open(filename) as image:
            width, height = image.size
    except FileNotFoundError:
        raise FileNotFoundError(f"stimulus file not found: {filename}") from None
    return height, width


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

        def column(value, dtype, default):
            if value is None:
                return np.full(count, default, dtype=dtype)
            value = np.asarray(value, dtype=dtype).ravel()
            if len(value) != count:
                raise ValueError(f"fixation arrays differ in length: {len(value)} vs {count} x-values")
            return value

        self.y = column(y, float, np.nan)
        self.n = column(n, int, 0)
        if (self.n < 0).any():
            i = np.flatnonzero(self.n < 0)[0]
            raise ValueError(f"fixation #{i} has image index n={self.n[i]}; image indices are >= 0")
        self.subject = column(subject, int, 0)
        self.t = column(t, float, np.nan)
        self.duration = column(duration, float, np.nan)
        self.index_in_trial = column(index_in_trial, int, 0)
        if trial is None:
            _, trial = np.unique(np.stack([self.n, self.subject]), axis=1, return_inverse=True)
        self.trial = column(trial, int, 0)

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


# --------------------------------------------------------------------------- loaders

def load_osie(folder, *, keep_first):
    """Load OSIE (Xu et al. 2014): 700 images of 800 x 600 pixels, 15 observers.

    Reads ``folder/fixations.mat`` and the images in ``folder/stimuli``. MATLAB's 1-based
    pixel coordinates are shifted by -1 to the 0-based convention of this package.
    OSIE has no onset times: ``t`` is nan, ``duration`` is in seconds.

    Parameters
    ----------
    folder : str or Path
    keep_first : bool
        Keep the first fixation of each trial (where observers were made to start, near the centre).

    Returns
    -------
    stimuli : Stimuli
    fixations : Fixations
    """
    import scipy.io

    folder = Path(folder)
    mat_file = folder / "fixations.mat"
    if not mat_file.is_file():
        raise FileNotFoundError(f"OSIE fixations not found: {mat_file}")
    try:
        records = scipy.io.loadmat(mat_file, squeeze_me=True, struct_as_record=False)["fixations"]
        records = [(str(record.img), np.atleast_1d(record.subjects)) for record in np.atleast_1d(records)]
    except Exception as err:     # scipy raises ValueError, IndexError, TypeError, ... on files it cannot read
        raise ValueError(f"{mat_file}: not OSIE's fixations.mat (a MATLAB file with a struct array 'fixations' "
                         f"of img and subjects): {type(err).__name__}: {err}") from err
    names = [name for name, _ in records]
    columns = {name: [] for name in ("x", "y", "n", "subject", "duration", "index_in_trial")}
    for n, (_, subjects) in enumerate(records):
        for s, subject in enumerate(subjects):
            x = np.atleast_1d(np.asarray(subject.fix_x, dtype=float)) - 1
            columns["x"].append(x)
            columns["y"].append(np.atleast_1d(np.asarray(subject.fix_y, dtype=float)) - 1)
            columns["duration"].append(np.atleast_1d(np.asarray(subject.fix_duration, dtype=float)) / 1000)
            columns["n"].append(np.full(len(x), n))
            columns["subject"].append(np.full(len(x), s))
            columns["index_in_trial"].append(np.arange(len(x)))
    fixations = Fixations(**{k: np.concatenate(v) for k, v in columns.items()})
    stimuli = Stimuli(filenames=[folder / "stimuli" / name for name in names])
    if not keep_first:
        fixations = fixations.filter(fixations.index_in_trial > 0)
    return stimuli, drop_invalid(fixations, stimuli.sizes, source=str(mat_file))


#: Column mapping of the MIT1003 fixation table (``fixations.csv.gz``) to :class:`Fixations` fields.
MIT1003_COLUMNS = {"subject": "Participant", "image": "Stimulus", "x": "Fixation_Position_X_px",
                   "y": "Fixation_Position_Y_px", "t": "Event_Start_Trial_Time_ms", "duration": "Duration"}


def read_table(filename):
    """``(header, rows, lines)`` of a CSV file: ``lines[i]`` is the file line of ``rows[i]`` (for messages).

    Raises ValueError, naming the file and line, for an empty file, a header without rows, or a row with
    fewer fields than the header.
    """
    opener = gzip.open if str(filename).endswith(".gz") else open
    with opener(filename, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{filename}: empty file; expected a header row naming the columns")
        rows, lines = [], []
        for row in reader:
            if len(row) < len(header):
                raise ValueError(f"{filename}, line {reader.line_num}: {len(row)} field(s), the header has "
                                 f"{len(header)}")
            rows.append(row)
            lines.append(reader.line_num)
    if not rows:
        raise ValueError(f"{filename}: a header and no rows (no fixations)")
    return header, rows, lines


def float_column(values, where):
    """Numbers of a table column; ``''``, ``NA``, ``NaN``, ``nan`` are missing (nan).

    ``where = (file, column name, file line of every value)`` names a value that is not a number.
    """
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if value not in ("", "NA", "NaN", "nan"):
            try:
                out[i] = float(value)
            except ValueError:
                table, column, lines = where
                raise ValueError(f"{table}, line {lines[i]}, column {column!r}: {value!r} is not a number "
                                 f"(decimal point '.'; missing values as '', NA or NaN)") from None
    return out


def load_fixation_table(table, stimuli_folder, *, keep_first, columns, extension=".jpg",
                        time_scale=1.0, missing_images="drop"):
    """Load fixations from a CSV table (optionally gzipped), one row per fixation.

    Parameters
    ----------
    table : str or Path
    stimuli_folder : str or Path
        Folder of the images; the table's image column holds file names, with or without ``extension``.
    keep_first : bool
        Keep the first recorded fixation of each (image, subject) trial (ordered by time,
        counted before rows with missing coordinates are dropped).
    columns : dict
        Maps ``"subject"``, ``"image"``, ``"x"``, ``"y"`` and optionally ``"t"``, ``"duration"``
        to column names of the table.
    extension : str
        Appended to image names that have no file extension.
    time_scale : float
        Factor converting the table's times to seconds.
    missing_images : {"drop", "error"}
        What to do with rows whose image file is not in ``stimuli_folder``.

    Returns
    -------
    stimuli : Stimuli
        The images with at least one row, sorted by name.
    fixations : Fixations
        Sorted by image, subject, time. Subjects are numbered in sorted name order.
    """
    if missing_images not in ("drop", "error"):
        raise ValueError(f"missing_images must be 'drop' or 'error', not {missing_images!r}")
    header, rows, lines = read_table(table)
    for field in ("subject", "image", "x", "y"):
        if field not in columns:
            raise ValueError(f"columns must map {field!r} to a column of {table}")
    missing = [name for name in columns.values() if name not in header]
    if missing:
        raise ValueError(f"{table}: no column(s) {missing}; the table has {header}")
    data = {field: [row[header.index(name)] for row in rows] for field, name in columns.items()}

    image_names = [name if os.path.splitext(name)[1] else name + extension for name in data["image"]]
    names, image_index = np.unique(image_names, return_inverse=True)
    folder = Path(stimuli_folder)
    present = np.array([(folder / name).is_file() for name in names])
    if not present.all():
        message = f"{table}: {(~present).sum()} of {len(names)} images not found in {folder}"
        if missing_images == "error":
            raise FileNotFoundError(message + f", e.g. {names[~present][0]}")
        log.warning("%s; dropping their %d rows", message, (~present[image_index]).sum())
    subject_names, subject = np.unique(data["subject"], return_inverse=True)
    def number(field):
        return float_column(data[field], (table, columns[field], lines))

    t = number("t") * time_scale if "t" in data else np.full(len(rows), np.nan)
    duration = number("duration") * time_scale if "duration" in data else None
    trial = image_index * len(subject_names) + subject
    index_in_trial = _positions_in_trials(trial, np.nan_to_num(t, nan=np.inf) if "t" in data
                                          else np.arange(len(rows)))

    keep = present[image_index]
    new_index = np.where(present, np.cumsum(present) - 1, 0)   # rows of missing images are filtered out below
    fixations = Fixations(x=number("x"), y=number("y"), n=new_index[image_index],
                          subject=subject, t=t, duration=duration, index_in_trial=index_in_trial,
                          trial=trial).filter(keep)
    if not keep_first:
        fixations = fixations.filter(fixations.index_in_trial > 0)
    order = np.lexsort((fixations.index_in_trial, fixations.subject, fixations.n))
    fixations = fixations.filter(order)
    stimuli = Stimuli(filenames=[folder / name for name in names[present]])
    return stimuli, drop_invalid(fixations, stimuli.sizes, source=str(table))


def load_mit1003(folder, *, keep_first):
    """Load MIT1003 (Judd et al. 2009) from a fixation table beside its images.

    Expects ``folder/fixations.csv.gz`` (columns :data:`MIT1003_COLUMNS`, times in seconds) and
    ``folder/stimuli/*.jpeg|jpg``; rows of images not present are dropped (logged), so a subset
    of the images works. pysaliency users can load their MIT1003 copy with :func:`read_hdf5`.
    Judd's original MATLAB ``DATA`` folder must first be converted to such a table.
    """
    folder = Path(folder)
    table = folder / "fixations.csv.gz"
    if not table.is_file():
        raise FileNotFoundError(f"MIT1003 fixation table not found: {table}")
    # Judd's ALLSTIMULI.zip names its images *.jpeg; the table names them without extension
    extension = ".jpeg" if any((folder / "stimuli").glob("*.jpeg")) else ".jpg"
    return load_fixation_table(table, folder / "stimuli", keep_first=keep_first, columns=MIT1003_COLUMNS,
                               extension=extension)


#: Folder of each dataset in the data directory, the first that exists: MIT1003 whole (as
#: ``python -m repro download mit1003`` writes it) or the 100-image subset of the project's shared data.
DATASET_FOLDERS = {"osie": ("osie",), "mit1003": ("mit1003", "mit1003-subset")}


def dataset_folder(name, data_dir):
    """The folder of dataset ``name`` (``"osie"`` or ``"mit1003"``) in ``data_dir`` (see :data:`DATASET_FOLDERS`)."""
    if name not in DATASET_FOLDERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASET_FOLDERS)}")
    candidates = [Path(data_dir) / folder for folder in DATASET_FOLDERS[name]]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"dataset {name} not found: none of {', '.join(map(str, candidates))} exists; "
                            f"run 'python -m repro download {name}'")


def load_dataset(name, data_dir, *, keep_first):
    """``(stimuli, fixations)`` of dataset ``name`` from its folder in ``data_dir``."""
    folder = dataset_folder(name, data_dir)
    return (load_osie if name == "osie" else load_mit1003)(folder, keep_first=keep_first)


# --------------------------------------------------------------------------- pysaliency HDF5

def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _check_version(group, kind, versions):
    if "version" not in group.attrs:
        raise ValueError(f"{group.file.filename}: {kind} without a 'version' attribute (pysaliency writes one; "
                         f"known versions: {', '.join(versions)})")
    version = _text(group.attrs["version"])
    if version not in versions:
        raise ValueError(f"{group.file.filename}: {kind} version {version!r} not supported "
                         f"(known: {', '.join(versions)})")


def _require(group, kind, names):
    missing = [name for name in names if name not in group]
    if missing:
        raise ValueError(f"{group.file.filename}: a pysaliency {kind} file without the dataset(s) {missing} "
                         f"it must have")


def _read_stimuli(group):
    import h5py

    kind = _text(group.attrs["type"])
    filename = Path(group.file.filename)
    if kind == "Stimuli":
        _check_version(group, kind, ("1.0", "1.1"))
        count = int(group.attrs["size"])
        sizes = [group[str(i)].shape[:2] for i in range(count)]
        path = group.name

        def loader(i):
            with h5py.File(filename, "r") as handle:
                return _as_rgb(handle[path][str(i)][...], f"image {i} in {filename}")
        return Stimuli(sizes=sizes, _loader=loader)
    _check_version(group, kind, ("1.0", "2.0", "2.1"))
    _require(group, kind, ("filenames", "shapes"))
    names = [_text(name) for name in group["filenames"][...]]
    if _text(group.attrs["version"]) >= "2.0":
        names = [filename.parent / name for name in names]
    sizes = [tuple(shape)[:2] for shape in group["shapes"][...]]
    return Stimuli(filenames=names, sizes=sizes)


def _read_fixations(group):
    kind = _text(group.attrs["type"])
    if kind == "FixationTrains":
        _check_version(group, kind, ("1.0", "1.1", "1.2", "1.3"))
        _require(group, kind, ("train_xs", "train_ys", "train_ts", "train_ns", "train_subjects"))
        train_x = group["train_xs"][...]
        valid = ~np.isnan(train_x)
        trial, index = np.nonzero(valid)
        durations = None
        attributes = group.get("scanpath_fixation_attributes")
        for name in ("durations", "duration"):
            if attributes is not None and name in attributes:
                durations = attributes[name][...][valid]
        return Fixations(x=train_x[valid], y=group["train_ys"][...][valid], n=group["train_ns"][...][trial],
                         subject=group["train_subjects"][...][trial], t=group["train_ts"][...][valid],
                         duration=durations, index_in_trial=index, trial=trial)
    _check_version(group, kind, ("1.0", "1.1", "1.2"))
    _require(group, kind, ("x", "y", "t", "n"))
    def optional(*names):
        return next((group[name][...] for name in names if name in group), None)

    # without subjects, every fixation is subject 0's (as for a Fixations made without them)
    subject, duration = optional("subjects", "subject"), optional("duration", "durations")
    trial = optional("scanpath_index")
    # pysaliency counts the history; ours also stores the index in the recorded trial
    index_in_trial = optional("index_in_trial")
    if index_in_trial is None and "x_hist" in group:
        index_in_trial = (~np.isnan(group["x_hist"][...])).sum(axis=-1)
    return Fixations(x=group["x"][...], y=group["y"][...], n=group["n"][...], subject=subject,
                     t=group["t"][...], duration=duration,
                     index_in_trial=index_in_trial, trial=trial)


def read_hdf5(filename):
    """Read a pysaliency HDF5 file of stimuli (``Stimuli``, ``FileStimuli``) or fixations
    (``Fixations``, ``FixationTrains``).

    Returns
    -------
    Stimuli or Fixations
    """
    import h5py

    try:
        handle = h5py.File(filename, "r")
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ValueError(f"{filename}: not a readable HDF5 file (truncated or another format?): {err}") from err
    with handle:
        if "type" not in handle.attrs:
            raise ValueError(f"{filename}: no 'type' attribute, not a pysaliency HDF5 file")
        kind = _text(handle.attrs["type"])
        readers = {"Stimuli": _read_stimuli, "FileStimuli": _read_stimuli, "Fixations": _read_fixations,
                   "FixationTrains": _read_fixations}
        if kind not in readers:
            raise ValueError(f"{filename}: unknown pysaliency type {kind!r}")
        try:
            return readers[kind](handle)
        except KeyError as err:
            raise ValueError(f"{filename}: a pysaliency {kind} file without a dataset or attribute of its "
                             f"version ({err})") from None


def _histories(fixations):
    """pysaliency's ``x_hist``-style arrays: previous values in the trial, nan-padded.

    Returns a function mapping a per-fixation array to shape (n_fixations, max_history).
    """
    order = np.lexsort((fixations.index_in_trial, fixations.trial))
    position = _positions_in_trials(fixations.trial, fixations.index_in_trial)
    width = max(int(position.max(initial=0)), 1)
    rows = np.repeat(np.arange(len(fixations)), position)  # fixation i has position[i] predecessors
    cols = np.concatenate([np.arange(p) for p in position]) if len(fixations) else np.zeros(0, int)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    sources = order[inverse[rows] - position[rows] + cols]

    def history(values):
        out = np.full((len(fixations), width), np.nan)
        out[rows, cols] = values[sources]
        return out
    return history


def _atomic_hdf5(filename, write):
    """Call ``write(h5py.File)`` on a temporary file that replaces ``filename`` only on success."""
    import h5py

    with atomic_path(filename) as temporary:
        with h5py.File(temporary, "w") as target:
            write(target)


def write_hdf5(data, filename):
    """Write stimuli or fixations in pysaliency's HDF5 layout (readable by pysaliency 0.2.22).

    File-backed :class:`Stimuli` become ``FileStimuli`` 2.1 (file names relative to the HDF5
    file), others ``Stimuli`` 1.1 (one gzip dataset per image). :class:`Fixations` become
    ``Fixations`` 1.0 with ``subjects``, ``duration``, ``scanpath_index`` and ``index_in_trial`` as
    attributes. The file is written to a temporary name first and then moved into place.
    """
    import h5py

    def write_stimuli(target):
        if data.filenames is not None:
            target.attrs["type"], target.attrs["version"] = np.bytes_("FileStimuli"), np.bytes_("2.1")
            relative = [os.path.relpath(Path(f).resolve(), Path(filename).resolve().parent) for f in data.filenames]
            target.create_dataset("filenames", data=np.array([f.encode("utf8") for f in relative]),
                                  dtype=h5py.special_dtype(vlen=str))
            shapes = target.create_dataset("shapes", (len(data),), dtype=h5py.special_dtype(vlen=np.dtype("int64")))
            for i, shape in enumerate(data.shapes):
                shapes[i] = np.array(shape)
        else:
            target.attrs["type"], target.attrs["version"] = np.bytes_("Stimuli"), np.bytes_("1.1")
            for i in range(len(data)):
                target.create_dataset(str(i), data=data[i], compression="gzip")
        target.attrs["__attributes__"] = np.bytes_("[]")
        target.attrs["size"] = len(data)

    def write_fixations(target):
        target.attrs["type"], target.attrs["version"] = np.bytes_("Fixations"), np.bytes_("1.0")
        history = _histories(data)
        columns = {"x": data.x, "y": data.y, "t": data.t, "x_hist": history(data.x), "y_hist": history(data.y),
                   "t_hist": history(data.t), "n": data.n, "subjects": data.subject, "duration": data.duration,
                   "scanpath_index": data.trial, "index_in_trial": data.index_in_trial}
        for name, values in columns.items():
            target.create_dataset(name, data=values)
        attributes = ["subjects", "duration", "scanpath_index", "index_in_trial"]
        target.attrs["__attributes__"] = np.bytes_(json.dumps(attributes))

    if isinstance(data, Stimuli):
        _atomic_hdf5(filename, write_stimuli)
    elif isinstance(data, Fixations):
        _atomic_hdf5(filename, write_fixations)
    else:
        raise TypeError(f"cannot write {type(data).__name__} as pysaliency HDF5")


# --------------------------------------------------------------------------- splits

def mit1003_split(stimuli):
    """The paper's MIT1003 split: images of exactly 1024 x 768 pixels train, all others test.

    On the full dataset this gives 463 training and 540 test images.

    Returns
    -------
    train, test : ndarray of int
        Image indices.
    """
    sizes = np.asarray(stimuli.sizes)
    is_train = (sizes[:, 0] == 768) & (sizes[:, 1] == 1024)
    return np.flatnonzero(is_train), np.flatnonzero(~is_train)


def osie_split(stimuli):
    """A deterministic half split of OSIE: images sorted by id, alternately train and test.

    The first, third, ... image in id order (``1001``, ``1003``, ...) trains, the others test:
    350 + 350 images, both spread over the whole collection.

    Returns
    -------
    train, test : ndarray of int
        Image indices.
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
