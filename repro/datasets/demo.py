"""The embedded demonstration data, as a dataset of the registry: its label and split.

Its images and fixations are made from a network by :func:`repro.demo.demo_dataset` (which needs
Theano), so it has no loader and no folder here; :mod:`repro.demo` reads its label from this file.
"""
from .core import Dataset, alternate_split

__all__ = ["DEMO_LABEL", "DATASET"]

#: What every figure of the demonstration data says about itself.
DEMO_LABEL = "DEMONSTRATION DATA (scikit-image photographs, fixations sampled from a planted model)"

#: The demonstration data (:class:`repro.datasets.Dataset`): images sorted by id, alternately train and test.
DATASET = Dataset(name="demo", label=DEMO_LABEL, split=alternate_split)
