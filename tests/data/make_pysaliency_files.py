"""Write the small HDF5 files under ``pysaliency_0.2.22/`` with pysaliency 0.2.22 itself.

Run once, in an environment with pysaliency 0.2.22 installed (not a dependency of
this project)::

    python tests/data/make_pysaliency_files.py

The files are the reference for ``tests/test_datasets.py``: they show that files
written by pysaliency load with ``repro.datasets``.
"""
import sys
import types
from pathlib import Path

import numpy as np
from PIL import Image

sys.modules.setdefault("torch", types.ModuleType("torch"))  # pysaliency imports torch models eagerly
import pysaliency  # noqa: E402

HERE = Path(__file__).resolve().parent / "pysaliency_0.2.22"


def main():
    HERE.mkdir(exist_ok=True)
    rng = np.random.RandomState(0)
    images = [rng.randint(0, 256, size=(12, 16, 3)).astype(np.uint8),
              rng.randint(0, 256, size=(10, 8, 3)).astype(np.uint8)]
    pysaliency.Stimuli(images).to_hdf5(str(HERE / "stimuli.hdf5"))
    filenames = []
    for i, image in enumerate(images):
        filename = HERE / f"image{i}.png"
        Image.fromarray(image).save(filename)
        filenames.append(str(filename))
    pysaliency.FileStimuli(filenames).to_hdf5(str(HERE / "file_stimuli.hdf5"))

    xs = [[1.5, 3.2, 14.9], [2.0, 7.5], [0.1, 5.0, 6.6, 7.9]]
    ys = [[0.5, 11.0, 6.25], [3.0, 4.0], [9.9, 0.0, 2.5, 5.5]]
    ts = [[0.0, 0.2, 0.6], [0.1, 0.4], [0.05, 0.5, 0.9, 1.3]]
    ns = [0, 0, 1]
    subjects = [0, 1, 1]
    durations = [[0.15, 0.3, 0.2], [0.25, 0.1], [0.3, 0.3, 0.2, 0.1]]
    trains = pysaliency.FixationTrains.from_fixation_trains(
        xs, ys, ts, ns, subjects, scanpath_fixation_attributes={"durations": durations},
        scanpath_attribute_mapping={"durations": "duration"})
    trains.to_hdf5(str(HERE / "fixation_trains.hdf5"))
    trains[np.arange(len(trains.x))].to_hdf5(str(HERE / "fixations.hdf5"))
    print("wrote", sorted(p.name for p in HERE.iterdir()))


if __name__ == "__main__":
    main()
