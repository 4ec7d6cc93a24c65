"""Fixation datasets: stimuli, fixations, loaders, pysaliency HDF5 files and splits (see :mod:`.core`)."""
from .core import *  # noqa: F401,F403
from .core import __all__  # noqa: F401
