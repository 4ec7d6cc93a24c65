"""OSIE (Xu et al. 2014): 700 images of 800 x 600 pixels, 15 observers, fixations in a MATLAB file."""
from pathlib import Path

import numpy as np

from .core import Archive, Dataset, Fixations, Stimuli, alternate_split, drop_invalid

__all__ = ["load_osie", "osie_split", "DATASET"]

#: Its fixations in its folder (beside ``stimuli/*.jpg``).
FIXATION_FILE = "fixations.mat"


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
    mat_file = folder / FIXATION_FILE
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


def osie_split(stimuli):
    """A deterministic half split of OSIE: images sorted by id, alternately train and test (:func:`alternate_split`).

    The first, third, ... image in id order (``1001``, ``1003``, ...) trains, the others test:
    350 + 350 images, both spread over the whole collection.

    Returns
    -------
    train, test : ndarray of int
        Image indices.
    """
    return alternate_split(stimuli)


#: What the package knows of OSIE (:class:`repro.datasets.Dataset`). Its source: the NUS VIP lab's repository
#: archive, whose 700 images and ``fixations.mat`` are checked file by file against ``repro/manifests/osie.sha256``
#: (SHA-256 of the copies this project was developed on; GitHub's archives are not byte-stable).
DATASET = Dataset(name="osie", label="OSIE (Xu et al. 2014)", split=osie_split, load=load_osie,
                  folders=("osie",), fixation_file=FIXATION_FILE,
                  source=Archive(
                      url="https://github.com/NUS-VIP/predicting-human-gaze-beyond-pixels/archive/master.zip",
                      checksum=None, members=(("data/stimuli/*.jpg", "stimuli"), ("data/eye/fixations.mat", ""),
                                              ("LICENSE", "")),
                      manifest="osie.sha256", strip_root=True))
