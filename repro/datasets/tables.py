"""Fixation tables: CSV files (optionally gzipped) with one row per fixation, as MIT1003's."""
import csv
import gzip
import os
from pathlib import Path

import numpy as np

from .core import Fixations, Stimuli, _positions_in_trials, drop_invalid, log

__all__ = ["read_table", "float_column", "load_fixation_table"]


def read_table(filename):
    """``(header, rows, lines)`` of a CSV file (UTF-8, with or without a byte-order mark, as spreadsheet programs
    write it): ``lines[i]`` is the file line of ``rows[i]`` (for messages).

    Raises ValueError, naming the file and line, for an empty file, text that is not UTF-8, a header without
    rows, or a row with more or fewer fields than the header.
    """
    opener = gzip.open if str(filename).endswith(".gz") else open
    try:
        with opener(filename, "rt", newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise ValueError(f"{filename}: empty file; expected a header row naming the columns")
            rows, lines = [], []
            for row in reader:
                if len(row) != len(header):
                    raise ValueError(f"{filename}, line {reader.line_num}: {len(row)} field(s), the header has "
                                     f"{len(header)}")
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as err:
        raise ValueError(f"{filename}: not UTF-8 text ({err}); save the table as UTF-8 CSV") from None
    if not rows:
        raise ValueError(f"{filename}: a header and no rows (no fixations)")
    return header, rows, lines


def float_column(values, where):
    """Numbers of a table column; ``''``, ``NA``, ``NaN``, ``nan`` are missing (nan).

    ``where = (file, column name, file line of every value)`` names a value that is not a number.
    """
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if value not in ("", "NA", "NaN", "nan"):
            try:
                out[i] = float(value)
            except ValueError:
                table, column, lines = where
                raise ValueError(f"{table}, line {lines[i]}, column {column!r}: {value!r} is not a number "
                                 f"(decimal point '.'; missing values as '', NA or NaN)") from None
    return out


def load_fixation_table(table, stimuli_folder, *, keep_first, columns, extension=".jpg",
                        time_scale=1.0, missing_images="drop"):
    """Load fixations from a CSV table (optionally gzipped), one row per fixation.

    Parameters
    ----------
    table : str or Path
    stimuli_folder : str or Path
        Folder of the images; the table's image column holds file names, with or without ``extension``.
    keep_first : bool
        Keep the first recorded fixation of each (image, subject) trial (ordered by time,
        counted before rows with missing coordinates are dropped).
    columns : dict
        Maps ``"subject"``, ``"image"``, ``"x"``, ``"y"`` and optionally ``"t"``, ``"duration"``
        to column names of the table.
    extension : str
        Appended to image names that have no file extension.
    time_scale : float
        Factor converting the table's times to seconds.
    missing_images : {"drop", "error"}
        What to do with rows whose image file is not in ``stimuli_folder``.

    Returns
    -------
    stimuli : Stimuli
        The images with at least one row, sorted by name.
    fixations : Fixations
        Sorted by image, subject, time. Subjects are numbered in sorted name order.
    """
    if missing_images not in ("drop", "error"):
        raise ValueError(f"missing_images must be 'drop' or 'error', not {missing_images!r}")
    header, rows, lines = read_table(table)
    for field in ("subject", "image", "x", "y"):
        if field not in columns:
            raise ValueError(f"columns must map {field!r} to a column of {table}")
    missing = [name for name in columns.values() if name not in header]
    if missing:
        raise ValueError(f"{table}: no column(s) {missing}; the table has {header}")
    data = {field: [row[header.index(name)] for row in rows] for field, name in columns.items()}

    image_names = [name if os.path.splitext(name)[1] else name + extension for name in data["image"]]
    names, image_index = np.unique(image_names, return_inverse=True)
    folder = Path(stimuli_folder)
    present = np.array([(folder / name).is_file() for name in names])
    if not present.all():
        message = f"{table}: {(~present).sum()} of {len(names)} images not found in {folder}"
        if missing_images == "error":
            raise FileNotFoundError(message + f", e.g. {names[~present][0]}")
        log.warning("%s; dropping their %d rows", message, (~present[image_index]).sum())
    subject_names, subject = np.unique(data["subject"], return_inverse=True)
    def number(field):
        return float_column(data[field], (table, columns[field], lines))

    t = number("t") * time_scale if "t" in data else np.full(len(rows), np.nan)
    duration = number("duration") * time_scale if "duration" in data else None
    trial = image_index * len(subject_names) + subject
    index_in_trial = _positions_in_trials(trial, np.nan_to_num(t, nan=np.inf) if "t" in data
                                          else np.arange(len(rows)))

    keep = present[image_index]
    new_index = np.where(present, np.cumsum(present) - 1, 0)   # rows of missing images are filtered out below
    fixations = Fixations(x=number("x"), y=number("y"), n=new_index[image_index],
                          subject=subject, t=t, duration=duration, index_in_trial=index_in_trial,
                          trial=trial).filter(keep)
    if not keep_first:
        fixations = fixations.filter(fixations.index_in_trial > 0)
    order = np.lexsort((fixations.index_in_trial, fixations.subject, fixations.n))
    fixations = fixations.filter(order)
    stimuli = Stimuli(filenames=[folder / name for name in names[present]])
    return stimuli, drop_invalid(fixations, stimuli.sizes, source=str(table))
