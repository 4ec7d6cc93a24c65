"""MIT1003 (Judd et al. 2009): 1003 images of mixed sizes, 15 observers, fixations in a table."""
from pathlib import Path

import numpy as np

from .core import Archive, Dataset
from .tables import load_fixation_table

__all__ = ["MIT1003_COLUMNS", "load_mit1003", "mit1003_split", "DATASET"]

#: Column mapping of the MIT1003 fixation table (``fixations.csv.gz``) to :class:`Fixations` fields.
MIT1003_COLUMNS = {"subject": "Participant", "image": "Stimulus", "x": "Fixation_Position_X_px",
                   "y": "Fixation_Position_Y_px", "t": "Event_Start_Trial_Time_ms", "duration": "Duration"}
#: Its fixation table in its folder (beside ``stimuli/``).
FIXATION_FILE = "fixations.csv.gz"
#: The common frame of its centre bias, ``(height, width)``: its images differ in size, and the paper's
#: centre bias for them is a KDE in a 100 x 100 frame (Section 2.2).
CENTER_BIAS_FRAME = (100, 100)


def load_mit1003(folder, *, keep_first):
    """Load MIT1003 (Judd et al. 2009) from a fixation table beside its images.

    Expects ``folder/fixations.csv.gz`` (columns :data:`MIT1003_COLUMNS`, times in seconds) and
    ``folder/stimuli/*.jpeg|jpg``; rows of images not present are dropped (logged), so a subset
    of the images works. pysaliency users can load their MIT1003 copy with :func:`read_hdf5`.
    Judd's original MATLAB ``DATA`` folder must first be converted to such a table.
    """
    folder = Path(folder)
    table = folder / FIXATION_FILE
    if not table.is_file():
        raise FileNotFoundError(f"MIT1003 fixation table not found: {table}")
    # Judd's ALLSTIMULI.zip names its images *.jpeg; the table names them without extension
    extension = ".jpeg" if any((folder / "stimuli").glob("*.jpeg")) else ".jpg"
    return load_fixation_table(table, folder / "stimuli", keep_first=keep_first, columns=MIT1003_COLUMNS,
                               extension=extension)


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


#: What the package knows of MIT1003 (:class:`repro.datasets.Dataset`). Its folder in the data directory:
#: MIT1003 whole (as ``python -m repro download mit1003`` writes it), else the 100-image subset of the
#: project's shared data, labelled as a subset. Its source: Judd's stimuli archive ``ALLSTIMULI.zip``, checked
#: by its MD5 (the checksum pysaliency uses for the same file) and the count of its 1003 images; its fixations
#: are not in it.
DATASET = Dataset(name="mit1003", label="MIT1003 (Judd et al. 2009)", split=mit1003_split, load=load_mit1003,
                  folders=("mit1003", "mit1003-subset"), fixation_file=FIXATION_FILE,
                  center_bias_frame=CENTER_BIAS_FRAME, subset_label="MIT1003 subset (Judd et al. 2009)",
                  source=Archive(url="http://people.csail.mit.edu/tjudd/WherePeopleLook/ALLSTIMULI.zip",
                                 checksum="md5:0d7df8b954ecba69b6796e77b9afe4b6",
                                 members=(("ALLSTIMULI/*.jpeg", "stimuli"),), count=1003,
                                 note="MIT1003's fixations are not in ALLSTIMULI.zip: add a table with "
                                      "--fixations TABLE (see README, 'Real data and weights')"))
