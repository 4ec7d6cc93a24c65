"""What the scripts in ``experiments/`` share, one module per job:

* :mod:`~repro.experiments.setups`: command-line options, and the dataset, split, centre bias, gold standard
  and network of a run (:class:`Setup`), built once per process;
* :mod:`~repro.experiments.grid`: one leave-one-subject-out fold as a job (:func:`fit_and_score`, which runs
  :func:`repro.crossvalidation.fold`), and the cached, distributed grid of such jobs (:func:`run_grid`);
* :mod:`~repro.experiments.comparison`: the earlier saliency models as jobs of the grid
  (:func:`score_saliency_model`), and the paper's published values for them (:data:`PUBLISHED`);
* :mod:`~repro.experiments.results`: tables, figures and run records, written to ``results/`` or, with
  ``--publish``, committed under ``experiments/results/<dataset>/``;
* :mod:`~repro.experiments.patches`: fitted readouts and the image patches of their top features.

Every public name is re-exported here, so a script reads ``from repro import experiments as ex`` and
``ex.load_setup``, ``ex.run_grid``, ``ex.write_results``.
"""
from .comparison import PUBLISHED, QUICK_MAXITER, dataset_cells, model_names, published_rows, score_saliency_model
from .grid import (FIT_SOURCES, NOT_IN_FITS, NOT_IN_READOUT_FITS, SALIENCY_SOURCES, SCHEDULER_TIMEOUT, GridResults,
                   check_scheduler, aggregate, cached_result, config_key, estimate_seconds, feature_values,
                   fit_and_score, fit_config, grid_runner, saliency_config, is_prepared, prepared, release_prepared,
                   run_grid, same_blas_threads, train_readout, transfer_scores)
from .patches import crop, load_model, strongest_units, top_feature_patches, top_features, unit_box
from .results import (PUBLISHED_RESULTS, bar_chart, is_published, label_figure, machine, portable_options,
                      pyplot, run_record, shrink_png, tag, write_results)
from .setups import (FULL, GOOGLENET_LAYER, NETWORKS, QUICK, Setup, alexnet, googlenet, googlenet_weights,
                     load_setup, options_of, parser, setup_store)

__all__ = ["QUICK", "FULL", "NETWORKS", "GOOGLENET_LAYER", "parser", "options_of", "Setup", "alexnet",
           "googlenet_weights", "googlenet", "setup_store", "load_setup",
           "NOT_IN_FITS", "NOT_IN_READOUT_FITS", "FIT_SOURCES", "SALIENCY_SOURCES", "fit_config", "saliency_config",
           "config_key", "release_prepared", "is_prepared", "prepared",
           "transfer_scores", "fit_and_score", "train_readout", "cached_result", "same_blas_threads", "GridResults",
           "run_grid", "feature_values", "estimate_seconds", "aggregate", "grid_runner", "SCHEDULER_TIMEOUT",
           "check_scheduler",
           "PUBLISHED_RESULTS", "tag", "portable_options", "run_record", "shrink_png", "machine",
           "write_results", "is_published", "bar_chart", "pyplot", "label_figure",
           "PUBLISHED", "QUICK_MAXITER", "model_names", "dataset_cells", "score_saliency_model", "published_rows",
           "load_model", "top_features", "strongest_units", "top_feature_patches", "unit_box", "crop"]
