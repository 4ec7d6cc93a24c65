"""Fixation datasets: stimuli, fixations, loaders, pysaliency HDF5 files, splits, and the registry.

One home for each part:

- :mod:`~repro.datasets.core`: the data types (:class:`Stimuli`, :class:`Fixations`), the check of
  fixations against their images, generic splits, :class:`Dataset`, what the package knows of one
  dataset, and :class:`Archive`, where it can be downloaded from;
- :mod:`~repro.datasets.tables`: fixation tables (CSV), :mod:`~repro.datasets.hdf5`: pysaliency's
  HDF5 files;
- one file per dataset, each defining its loader, split, label, official source and ``DATASET``:
  :mod:`~repro.datasets.osie`, :mod:`~repro.datasets.mit1003`, :mod:`~repro.datasets.demo` (the
  embedded demonstration data, made from a planted model its loader takes, :mod:`repro.planted`).

:data:`DATASETS` holds them by name; the experiments (``--dataset``) and the command line
(``train --dataset``, ``predict --centerbias``, ``download``: :mod:`repro.download`) read it. Adding a
dataset: a file beside ``osie.py`` defining ``DATASET``, and its name in :data:`DATASETS` below.
"""
from pathlib import Path

from . import demo, mit1003, osie
from .core import (MAX_PIXELS, Archive, Dataset, Fixations, Stimuli, alternate_split, check_fixations, check_pixels,
                   check_points, drop_invalid, group_by_image, load_image, max_pixels, outside, subject_folds)
from .demo import load_demo
from .hdf5 import read_hdf5, write_hdf5
from .mit1003 import MIT1003_COLUMNS, load_mit1003, mit1003_split
from .osie import load_osie, osie_split
from .tables import float_column, load_fixation_table, read_table

__all__ = ["MAX_PIXELS", "max_pixels", "check_pixels", "Stimuli", "Fixations", "group_by_image", "load_image", "outside", "check_points", "check_fixations",
           "drop_invalid", "load_osie",
           "load_fixation_table", "load_mit1003", "MIT1003_COLUMNS", "DATASET_FOLDERS", "dataset_folder",
           "load_dataset", "read_table", "float_column", "read_hdf5", "write_hdf5",
           "mit1003_split", "osie_split", "load_demo", "subject_folds", "alternate_split", "Archive", "Dataset",
           "DATASETS"]

#: The registry: every dataset the package knows (:class:`Dataset`), by name, the demonstration data first.
DATASETS = {spec.name: spec for spec in (demo.DATASET, osie.DATASET, mit1003.DATASET)}

#: Folder of each dataset in the data directory, the first that exists (the datasets with a folder:
#: all but the demonstration data), e.g. MIT1003 whole or the 100-image subset of the project's shared data.
DATASET_FOLDERS = {name: spec.folders for name, spec in DATASETS.items() if spec.folders}


def dataset_folder(name, data_dir):
    """The folder of dataset ``name`` (a key of :data:`DATASET_FOLDERS`) in ``data_dir``.

    Returns
    -------
    Path
        The first of its :data:`DATASET_FOLDERS` that exists.

    Raises
    ------
    ValueError
        ``name`` is no dataset with a folder.
    FileNotFoundError
        None of its folders exists.
    """
    if name not in DATASET_FOLDERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASET_FOLDERS)}")
    candidates = [Path(data_dir) / folder for folder in DATASET_FOLDERS[name]]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"dataset {name} not found: none of {', '.join(map(str, candidates))} exists; "
                            f"run 'python -m repro download {name}'")


def load_dataset(name, data_dir, *, keep_first):
    """``(stimuli, fixations)`` of dataset ``name`` (one with a folder) from its folder in ``data_dir``, by its
    loader."""
    folder = dataset_folder(name, data_dir)
    return DATASETS[name].load(folder, keep_first=keep_first)
