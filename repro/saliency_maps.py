"""Saliency maps on disk: a folder of one map per stimulus, read once, checked, and kept on cells.

A saliency model's maps of a dataset are a folder with one file per stimulus, named after the stimulus
file: ``1001.png``, ``1001.npy`` or ``1001.jpg.npy`` for ``stimuli/1001.jpg``. A map is

- PNG or JPEG, 8- or 16-bit grey (colour files whose channels are all equal are read as grey; an alpha channel
  is ignored);
- ``.npy``: a 2-d array of numbers (:func:`numpy.save`);
- ``.mat``: a MATLAB file holding one 2-d numeric variable (any name; MATLAB v7.3 files too).

Every map must have its stimulus's size (or be resized bilinearly with ``resize=True``), finite values, and
not be constant (a constant map ranks no pixel above another). A missing or extra file, a second file for one
stimulus, or a map that fails these checks is a ValueError naming the file.

Reading and decoding a folder of 700 maps takes some tens of seconds; what the postprocessing reads of
them (:class:`repro.postprocessing.MapCells`: means over cells and the range) is cached in one file per
folder, keyed by the files' contents, the grid and ``resize``, and written atomically.
"""
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy.io import loadmat
from tqdm.auto import tqdm

from .paths import atomic_path, cache_dir, file_digest
from .postprocessing import GRID, MapCells, map_cells
from .resampling import cell_grid, resize_operator

__all__ = ["MAP_SUFFIXES", "read_map", "map_files", "checked_map", "load_maps"]

#: File suffixes read as maps.
MAP_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy", ".mat")
#: Format of the cache files; a change makes older caches unused.
CACHE_FORMAT = "deepgaze1-repro map cells 1"


# ------------------------------------------------------------------------------------------ reading one map

def _image_map(path):
    with Image.open(path) as image:
        image.load()
        mode = image.mode
        if mode in ("1", "L", "LA", "P", "PA"):
            image = image.convert("L")
        elif mode in ("RGB", "RGBA", "CMYK", "YCbCr"):
            rgb = np.asarray(image.convert("RGB"))
            if np.ptp(rgb.astype(np.int16), axis=2).any():
                raise ValueError(f"{path}: a colour image (its channels differ); a saliency map is grey: save one "
                                 f"channel (8- or 16-bit grey PNG, or .npy)")
            return rgb[:, :, 0].astype(np.float64)
        elif not (mode.startswith("I") or mode == "F"):
            raise ValueError(f"{path}: image mode {mode} is not a grey map")
        return np.asarray(image, dtype=np.float64)


def _mat_map(path):
    if h5py.is_hdf5(path):                                       # MATLAB v7.3: HDF5, arrays stored transposed
        with h5py.File(path, "r") as f:
            found = {name: f[name][()].T for name in f if isinstance(f[name], h5py.Dataset) and not name.startswith("#")}
    else:
        found = {name: value for name, value in loadmat(path).items() if not name.startswith("__")}
    numeric = {name: np.asarray(v) for name, v in found.items()
               if isinstance(v, np.ndarray) and np.asarray(v).dtype.kind in "biuf" and np.squeeze(v).ndim == 2}
    if len(numeric) != 1:
        raise ValueError(f"{path}: expected one 2-d numeric variable, found "
                         f"{sorted(numeric) or 'none'} (all variables: {sorted(found) or 'none'})")
    return np.squeeze(numeric.popitem()[1]).astype(np.float64)


def read_map(path):
    """Read one saliency map file (see the module docstring for the formats).

    Returns
    -------
    ndarray, shape (H, W), float64

    Raises
    ------
    ValueError
        Naming the file: not readable as a map of its suffix, a colour image, not 2-d, not numeric.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
            if values.dtype.kind not in "biuf":
                raise ValueError(f"{path}: array of dtype {values.dtype}, expected numbers")
            values = np.squeeze(values) if values.ndim == 3 and 1 in values.shape[::2] else values
        elif suffix == ".mat":
            values = _mat_map(path)
        elif suffix in (".png", ".jpg", ".jpeg"):
            values = _image_map(path)
        else:
            raise ValueError(f"{path}: not a map file (expected one of {', '.join(MAP_SUFFIXES)})")
    except (UnidentifiedImageError, OSError, SyntaxError, NotImplementedError, TypeError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable {suffix} map ({type(err).__name__}: {err})") from err
    if values.ndim != 2:
        raise ValueError(f"{path}: expected a 2-d map (height, width), got shape {values.shape}")
    return values.astype(np.float64)


def checked_map(values, path, shape, resize=False):
    """A map checked against its stimulus: ``(H, W)`` float64 of ``shape`` (resized bilinearly if ``resize``),
    finite, not constant; ValueError naming ``path`` otherwise."""
    shape = tuple(int(n) for n in shape)
    if values.shape != shape:
        if not resize:
            raise ValueError(f"{path}: map of (height, width) {values.shape}, its stimulus is {shape}; make the map "
                             f"the stimulus's size, or resize it bilinearly (--resize, resize=True)")
    bad = ~np.isfinite(values)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{path}: {int(bad.sum())} non-finite values (the first, {values[where]}, at (row, column) "
                         f"{where}); a map must be finite everywhere")
    if values.shape != shape:
        values = resize_operator(shape[0], values.shape[0]) @ values @ resize_operator(shape[1], values.shape[1]).T
    if np.ptp(values) == 0:
        raise ValueError(f"{path}: constant map (every value is {values.flat[0]}): it ranks no pixel above another")
    return values


# ------------------------------------------------------------------------------------------ a folder

def _stimulus_names(stimuli):
    """Names a map file may carry for each stimulus: its id (file stem) and, for files, its file name."""
    files = stimuli.filenames or [None] * len(stimuli)
    return [{stimulus_id} | ({f.name} if f is not None else set()) for stimulus_id, f in zip(stimuli.ids, files)]


def map_files(folder, stimuli):
    """The map file of every stimulus in ``folder``, in the stimuli's order.

    Raises
    ------
    FileNotFoundError
        ``folder`` is not a folder.
    ValueError
        A stimulus has no map or two; a file is no map of any stimulus (hidden files are ignored); naming them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of saliency maps")
    owner = {name: i for i, names in enumerate(_stimulus_names(stimuli)) for name in names}
    found, extra = {}, []
    for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        key = path.name[:-len(path.suffix)] if path.suffix.lower() in MAP_SUFFIXES else None
        if key not in owner:
            extra.append(path.name)
            continue
        if owner[key] in found:
            raise ValueError(f"{folder}: two maps for stimulus {stimuli.ids[owner[key]]}: "
                             f"{found[owner[key]].name} and {path.name}")
        found[owner[key]] = path
    if extra:
        raise ValueError(f"{folder}: {len(extra)} files are no map of a stimulus ({', '.join(extra[:5])}"
                         f"{', ...' if len(extra) > 5 else ''}); expected <stimulus name><one of "
                         f"{', '.join(MAP_SUFFIXES)}> for the {len(stimuli)} stimuli")
    missing = [stimuli.ids[i] for i in range(len(stimuli)) if i not in found]
    if missing:
        raise ValueError(f"{folder}: no map for {len(missing)} of the {len(stimuli)} stimuli ({', '.join(missing[:5])}"
                         f"{', ...' if len(missing) > 5 else ''}); expected e.g. {missing[0]}.png or {missing[0]}.npy")
    return [found[i] for i in range(len(stimuli))]


def _cache_key(files, stimuli, grid, resize):
    digest = hashlib.sha1(json.dumps([CACHE_FORMAT, list(grid), bool(resize), np.asarray(stimuli.sizes).tolist()])
                          .encode())
    for path in files:
        digest.update(f"{path.name}:{file_digest(path)}".encode())
    return digest.hexdigest()


def _read_cache(path, stimuli, grid):
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != CACHE_FORMAT:
            return None
        lows, highs = f["low"][()], f["high"][()]
        return [MapCells(cell_grid(tuple(size), *grid), f["means"][str(i)][()], float(lows[i]), float(highs[i]))
                for i, size in enumerate(stimuli.sizes)]


def _write_cache(path, cells):
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = CACHE_FORMAT
        f["low"], f["high"] = [c.low for c in cells], [c.high for c in cells]
        means = f.create_group("means")
        for i, c in enumerate(cells):
            means[str(i)] = c.means


def load_maps(folder, stimuli, grid=GRID, resize=False, cache=True, progress=True):
    """Read a folder of saliency maps, one per stimulus, as the postprocessing reads them.

    Parameters
    ----------
    folder : str or Path
    stimuli : repro.datasets.Stimuli
    grid : (float, float)
        The cells (:data:`repro.postprocessing.GRID`).
    resize : bool
        Resize maps of another size than their stimulus bilinearly (else that is an error).
    cache : bool
        Keep what is read in the cache (``<cache>/maps``, :func:`repro.paths.cache_dir`) and reuse it while the files
        are unchanged.
    progress : bool

    Returns
    -------
    list of repro.postprocessing.MapCells
        In the stimuli's order.
    """
    files = map_files(folder, stimuli)
    target = cache_dir("maps") / f"{_cache_key(files, stimuli, grid, resize)}.h5" if cache else None
    if target is not None and target.is_file():
        try:
            found = _read_cache(target, stimuli, grid)
            if found is not None:
                return found
        except (OSError, KeyError):
            pass                                          # damaged: read the maps again and replace it
    cells = [map_cells(checked_map(read_map(path), path, size, resize), grid, str(path))
             for path, size in zip(tqdm(files, desc="maps", unit="map", disable=not progress), stimuli.sizes)]
    if target is not None:
        _write_cache(target, cells)
    return cells
