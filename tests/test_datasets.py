"""Datasets: loaders on the real data, image conversion, pysaliency HDF5 files, splits."""
import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro.datasets import (DATASETS, MIT1003_COLUMNS, Fixations, Stimuli, check_fixations, load_fixation_table,
                            load_mit1003, load_osie, mit1003_split, osie_split, read_hdf5, subject_folds, write_hdf5)

PYSALIENCY_FILES = Path(__file__).resolve().parent / "data" / "pysaliency_0.2.22"


@pytest.fixture(scope="module")
def osie(osie_dir):
    return load_osie(osie_dir, keep_first=True)


def test_osie_counts_and_coordinates(osie, osie_dir):
    import scipy.io

    stimuli, fixations = osie
    assert len(stimuli) == 700 and len(fixations) == 98321
    assert stimuli.ids[0] == "1001" and stimuli.ids[-1] == "1700"
    assert (stimuli.sizes == (600, 800)).all()
    assert len(fixations.subjects) == 15 and len(fixations.images) == 700
    record = scipy.io.loadmat(osie_dir / "fixations.mat", squeeze_me=True, struct_as_record=False)["fixations"][0]
    first = fixations.filter((fixations.n == 0) & (fixations.subject == 0))
    np.testing.assert_allclose(first.x, record.subjects[0].fix_x - 1)   # MATLAB 1-based -> 0-based
    np.testing.assert_allclose(first.duration, record.subjects[0].fix_duration / 1000)
    np.testing.assert_array_equal(first.index_in_trial, np.arange(len(first)))
    image = stimuli[0]
    assert image.shape == (600, 800, 3) and image.dtype == np.uint8


def test_osie_keep_first_is_explicit(osie_dir, osie):
    _, all_fixations = osie
    _, later = load_osie(osie_dir, keep_first=False)
    trials = len(np.unique(all_fixations.trial))
    assert len(later) == len(all_fixations) - trials
    assert later.index_in_trial.min() == 1
    with pytest.raises(TypeError):
        load_osie(osie_dir)


def test_osie_split_and_subject_folds(osie):
    stimuli, fixations = osie
    train, test = osie_split(stimuli)
    assert len(train) == len(test) == 350
    assert not set(train) & set(test)
    assert stimuli.ids[train[0]] == "1001" and stimuli.ids[test[0]] == "1002"
    folds = subject_folds(fixations)
    assert len(folds) == 15
    assert np.sum([test_mask for _, test_mask in folds], axis=0).tolist() == [1] * len(fixations)
    assert all((train_mask ^ test_mask).all() for train_mask, test_mask in folds)


def test_mit1003_table(data_dir, caplog):
    folder = data_dir / "mit1003-subset"
    with caplog.at_level(logging.WARNING, logger="repro.datasets"):
        stimuli, fixations = load_mit1003(folder, keep_first=True)
    assert len(stimuli) == 100
    assert "903 of 1003 images not found" in caplog.text
    assert "missing coordinates" in caplog.text
    # 10,988 rows belong to these images; rows with NA or out-of-image coordinates are dropped
    assert 10000 < len(fixations) < 10988
    assert (fixations.x < stimuli.sizes[fixations.n, 1]).all() and (fixations.y >= 0).all()
    assert stimuli.sizes.max() == 1024
    assert np.all(np.diff(fixations.n) >= 0)
    _, later = load_mit1003(folder, keep_first=False)
    assert len(later) < len(fixations) and later.index_in_trial.min() >= 1
    train, test = mit1003_split(stimuli)
    assert len(train) + len(test) == 100
    assert (stimuli.sizes[train] == (768, 1024)).all() and not (stimuli.sizes[test] == (768, 1024)).all(axis=1).any()


def write_table(path, rows):
    with gzip.open(path, "wt") as handle:
        handle.write("who,img,px,py,start,dur\n")
        for row in rows:
            handle.write(",".join(map(str, row)) + "\n")


@pytest.fixture
def tiny_images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (10, 6), 128).save(folder / "gray.png")
    Image.new("CMYK", (8, 4), (0, 255, 0, 0)).save(folder / "cmyk.jpg")
    Image.new("RGBA", (5, 5), (10, 20, 30, 0)).save(folder / "alpha.png")
    Image.new("P", (7, 3)).save(folder / "palette.png")
    return folder


def test_images_are_always_rgb(tiny_images):
    stimuli = Stimuli(filenames=sorted(tiny_images.iterdir()))
    for image, (height, width) in zip(stimuli, stimuli.sizes):
        assert image.shape == (height, width, 3) and image.dtype == np.uint8
    assert stimuli.shapes[stimuli.ids.index("gray")] == (6, 10, 3)
    assert tuple(stimuli[stimuli.ids.index("alpha")][0, 0]) == (10, 20, 30)
    subset = stimuli.subset([2, 0])
    assert subset.ids == [stimuli.ids[2], stimuli.ids[0]]
    np.testing.assert_array_equal(subset[1], stimuli[0])


def test_fixation_table_with_column_mapping(tiny_images, tmp_path, caplog):
    table = tmp_path / "table.csv.gz"
    write_table(table, [("b", "gray", 1.5, 2.5, 0.1, 0.2), ("b", "gray", 9.9, 5.9, 0.5, 0.1),
                        ("a", "gray", 0.0, 0.0, 0.2, 0.3), ("a", "gray", 10.0, 1.0, 0.6, 0.3),   # x == width
                        ("a", "gray", "NA", "NA", 0.9, 0.3), ("a", "cmyk", 3, 2, 0.0, 0.1),
                        ("a", "missing", 1, 1, 0.0, 0.1)])
    columns = {"subject": "who", "image": "img", "x": "px", "y": "py", "t": "start", "duration": "dur"}
    with caplog.at_level(logging.WARNING, logger="repro.datasets"):
        stimuli, fixations = load_fixation_table(table, tiny_images, keep_first=True, columns=columns,
                                                 extension=".png")
    assert "2 of 3 images not found" in caplog.text
    assert "1 fixation(s) with missing coordinates and 1 outside" in caplog.text
    assert stimuli.ids == ["gray"]  # cmyk.png does not exist (it is a .jpg)
    assert fixations.x.tolist() == [0.0, 1.5, 9.9]
    assert fixations.subject.tolist() == [0, 1, 1] and fixations.index_in_trial.tolist() == [0, 0, 1]
    _, later = load_fixation_table(table, tiny_images, keep_first=False, columns=columns, extension=".png")
    assert later.x.tolist() == [9.9]
    with pytest.raises(FileNotFoundError, match="not found"):
        load_fixation_table(table, tiny_images, keep_first=True, columns=columns, missing_images="error")
    with pytest.raises(ValueError, match="no column"):
        load_fixation_table(table, tiny_images, keep_first=True, columns=dict(columns, x="X"))
    assert set(MIT1003_COLUMNS) == set(columns)


def expected_pysaliency_fixations():
    """What tests/data/make_pysaliency_files.py wrote, flattened in trial order."""
    return dict(x=[1.5, 3.2, 14.9, 2.0, 7.5, 0.1, 5.0, 6.6, 7.9], y=[0.5, 11.0, 6.25, 3.0, 4.0, 9.9, 0.0, 2.5, 5.5],
                t=[0.0, 0.2, 0.6, 0.1, 0.4, 0.05, 0.5, 0.9, 1.3], n=[0, 0, 0, 0, 0, 1, 1, 1, 1],
                subject=[0, 0, 0, 1, 1, 1, 1, 1, 1], index_in_trial=[0, 1, 2, 0, 1, 0, 1, 2, 3],
                trial=[0, 0, 0, 1, 1, 2, 2, 2, 2], duration=[0.15, 0.3, 0.2, 0.25, 0.1, 0.3, 0.3, 0.2, 0.1])


def assert_same_fixations(fixations, expected):
    for name, values in expected.items():
        np.testing.assert_allclose(getattr(fixations, name), values, err_msg=name)


@pytest.mark.parametrize("name", ["fixations.hdf5", "fixation_trains.hdf5"])
def test_reads_fixations_written_by_pysaliency(name):
    assert_same_fixations(read_hdf5(PYSALIENCY_FILES / name), expected_pysaliency_fixations())


@pytest.mark.parametrize("name", ["stimuli.hdf5", "file_stimuli.hdf5"])
def test_reads_stimuli_written_by_pysaliency(name):
    stimuli = read_hdf5(PYSALIENCY_FILES / name)
    assert stimuli.sizes.tolist() == [[12, 16], [10, 8]]
    np.testing.assert_array_equal(stimuli[1], np.asarray(Image.open(PYSALIENCY_FILES / "image1.png")))
    np.testing.assert_array_equal(stimuli.subset([1])[0], stimuli[1])


def test_hdf5_round_trip(tmp_path, tiny_images):
    fixations = Fixations(**expected_pysaliency_fixations())
    write_hdf5(fixations, tmp_path / "fixations.hdf5")
    assert_same_fixations(read_hdf5(tmp_path / "fixations.hdf5"), expected_pysaliency_fixations())
    partial = fixations.filter(fixations.index_in_trial > 0)   # trials without their first fixation
    write_hdf5(partial, tmp_path / "partial.hdf5")
    assert_same_fixations(read_hdf5(tmp_path / "partial.hdf5"),
                          {name: getattr(partial, name) for name in Fixations.fields})

    on_disk = Stimuli(filenames=sorted(tiny_images.iterdir()))
    in_memory = Stimuli(images=list(on_disk))
    for stimuli, name in [(on_disk, "files.hdf5"), (in_memory, "arrays.hdf5")]:
        write_hdf5(stimuli, tmp_path / name)
        back = read_hdf5(tmp_path / name)
        assert back.sizes.tolist() == stimuli.sizes.tolist()
        for a, b in zip(back, stimuli):
            np.testing.assert_array_equal(a, b)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary files left


def test_pysaliency_history_layout(tmp_path):
    """x_hist holds the previous fixations of the trial, nan-padded, as pysaliency's Fixations 1.0."""
    import h5py

    write_hdf5(Fixations(**expected_pysaliency_fixations()), tmp_path / "f.hdf5")
    with h5py.File(tmp_path / "f.hdf5", "r") as handle:
        assert handle.attrs["type"] == b"Fixations" and handle.attrs["version"] == b"1.0"
        with h5py.File(PYSALIENCY_FILES / "fixations.hdf5", "r") as reference:
            np.testing.assert_allclose(handle["x_hist"][...], reference["x_hist"][...])
            np.testing.assert_allclose(handle["t_hist"][...], reference["t_hist"][...])


def test_written_files_load_in_pysaliency(tmp_path):
    pysaliency = pytest.importorskip("pysaliency")
    write_hdf5(Fixations(**expected_pysaliency_fixations()), tmp_path / "f.hdf5")
    loaded = pysaliency.read_hdf5(str(tmp_path / "f.hdf5"))
    np.testing.assert_allclose(loaded.x, expected_pysaliency_fixations()["x"])


def test_bad_input_names_the_problem(tmp_path):
    with pytest.raises(ValueError, match="not a pysaliency"):
        import h5py
        with h5py.File(tmp_path / "empty.hdf5", "w"):
            pass
        read_hdf5(tmp_path / "empty.hdf5")
    with pytest.raises(ValueError, match="outside their image"):
        check_fixations(Fixations(x=[5.0], y=[1.0], n=[0]), [(4, 5)])
    with pytest.raises(ValueError, match="differ in length"):
        Fixations(x=[1, 2], y=[1], n=[0, 0])


def test_selection_by_image_and_subject_matches_stimuli_subset(tiny_images):
    stimuli = Stimuli(filenames=sorted(tiny_images.iterdir()))
    fixations = Fixations(x=[1, 2, 3, 4, 0.5], y=[1, 1, 2, 2, 0.5], n=[0, 1, 2, 2, 3], subject=[0, 1, 0, 1, 1])
    assert fixations.for_subjects(1).n.tolist() == [1, 2, 3]
    assert fixations.for_images([2, 3]).x.tolist() == [3, 4, 0.5]
    assert fixations[fixations.subject == 0].n.tolist() == [0, 2]
    chosen = [3, 2]
    subset, remapped = stimuli.subset(chosen), fixations.remap_images(chosen)
    assert remapped.n.tolist() == [1, 1, 0] and remapped.x.tolist() == [3, 4, 0.5]
    assert subset.ids[remapped.n[0]] == stimuli.ids[2]
    assert len(stimuli[1:3]) == 2 and stimuli[np.array([True, False, False, True])].ids == [stimuli.ids[0],
                                                                                             stimuli.ids[3]]


def test_the_demonstration_data_load_as_the_others_do_from_the_density_they_are_made_from():
    def uniform(stimuli):
        return [np.full(shape[:2], -np.log(shape[0] * shape[1])) for shape in stimuli.shapes]

    spec = DATASETS["demo"]
    stimuli, fixations = spec.load(None, keep_first=False, log_densities=uniform, n_subjects=2, per_trial=3)
    assert len(stimuli) == 12 and max(stimuli.sizes.max(axis=1)) == 256 and len(fixations) == 12 * 2 * 3
    check_fixations(fixations, stimuli.sizes)
    assert (fixations.index_in_trial == np.tile(np.arange(3), 24)).all()     # nothing dropped: no forced start
    assert spec.label_of(None, keep_first=False) == spec.label                # and its label does not say so
    assert DATASETS["osie"].label_of("osie", keep_first=False).endswith(", first fixation dropped")
    with pytest.raises(ValueError, match="made, not read"):
        spec.load("somewhere", keep_first=False, log_densities=uniform)
