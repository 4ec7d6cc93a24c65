"""pysaliency's HDF5 files of stimuli and fixations, read and written.

pysaliency's HDF5 layout (``attrs['type']`` and ``attrs['version']`` as bytes) is read for
``Stimuli`` 1.0/1.1, ``FileStimuli`` 1.0–2.1, ``Fixations`` 1.0–1.2 and ``FixationTrains``
1.0–1.3; :func:`write_hdf5` writes ``FileStimuli`` 2.1 / ``Stimuli`` 1.1 and ``Fixations`` 1.0,
which pysaliency 0.2.22 reads back.
"""
import json
import os
from pathlib import Path

import numpy as np

from ..paths import atomic_path
from .core import Fixations, Stimuli, _as_rgb, _positions_in_trials

__all__ = ["read_hdf5", "write_hdf5"]


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
        except ValueError as err:                  # a value out of type or range, named by Fixations
            if str(filename) in str(err):
                raise
            raise ValueError(f"{filename}: {err}") from None


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
