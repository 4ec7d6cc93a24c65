"""deepgaze1-repro: a runnable reproduction of DeepGaze I (Kümmerer, Theis & Bethge, 2015).

Modules follow the paper's concepts, data flowing one way::

    caffe -> network -> features -> model <- sfo
    datasets -> centerbias / goldstandard -> training -> metrics

Importing :mod:`repro` does not import Theano; :mod:`repro.backend` does, once,
after configuring it.
"""

__version__ = "0.1.0"
