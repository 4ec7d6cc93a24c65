"""Downloading official files, each checked against a checksum, never left half-written.

Networks (``repro.caffe.DOWNLOADS``) and datasets (:data:`DATASETS`) come from their official sources:

- **OSIE** (Xu et al. 2014): the NUS VIP lab's repository archive; its 700 images and ``fixations.mat`` are
  checked file by file against ``repro/manifests/osie.sha256`` (SHA-256 of the copies this project was
  developed on) and unpacked to ``<data>/osie/{stimuli/*.jpg, fixations.mat}``, the layout
  :func:`repro.datasets.load_osie` reads.
- **MIT1003** (Judd et al. 2009): the stimuli archive ``ALLSTIMULI.zip`` from Judd's site, checked by its MD5
  (the checksum pysaliency uses for the same file) and the count of its 1003 images, unpacked to
  ``<data>/mit1003/stimuli/*.jpeg``. Its fixations are not in that archive: pass a fixation table with the
  columns :data:`repro.datasets.MIT1003_COLUMNS` (one row per fixation, times in seconds) as ``fixations``;
  it is copied to ``<data>/mit1003/fixations.csv.gz``, where :func:`repro.datasets.load_mit1003` reads it.

A download goes to a temporary name beside its target and is renamed only when complete and verified:
an interrupted, truncated or corrupt transfer leaves nothing behind.
"""
import fnmatch
import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .paths import atomic_path, mirrored, remove_stale_parts

__all__ = ["Dataset", "DownloadError", "fetch", "file_digest", "DATASETS", "download_dataset", "verify_dataset"]

MANIFESTS = Path(__file__).resolve().parent / "manifests"


NAMES = {"sha1": "SHA-1", "sha256": "SHA-256", "md5": "MD5"}


class DownloadError(OSError):
    """A transfer that failed, was cut short or does not match its checksum."""


def file_digest(path, algorithm="sha256", chunk=1 << 22):
    """Hex digest of a file (``algorithm``: any :mod:`hashlib` name)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url, target, checksum=None, timeout=30, progress=True):
    """Download ``url`` to ``target`` with a progress bar; nothing is left there unless it is whole and fits.

    Parameters
    ----------
    url : str
        Fetched from ``DEEPGAZE_MIRROR`` instead when that is set (:func:`repro.paths.mirrored`).
    target : str or Path
    checksum : str, optional
        ``"<algorithm>:<hex digest>"``, e.g. ``"sha1:9116a6..."`` or ``"md5:0d7df8..."``.
    timeout : float
        Seconds to wait for the server.
    progress : bool

    Raises
    ------
    DownloadError
        The server could not be reached, sent fewer bytes than it announced, or the checksum differs.
    """
    from tqdm.auto import tqdm

    target, url = Path(target), mirrored(url)
    algorithm, expected = checksum.split(":") if checksum else ("sha256", None)
    digest = hashlib.new(algorithm)
    try:
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                received = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                        digest.update(block)
                        received += len(block)
                        bar.update(len(block))
            if total is not None and received != total:
                raise DownloadError(f"{url}: transfer cut short, {received} of {total} bytes")
            if expected is not None and digest.hexdigest() != expected:
                raise DownloadError(f"{url}: {NAMES.get(algorithm, algorithm)} {digest.hexdigest()} differs from "
                                    f"the expected {expected}")
    except http.client.IncompleteRead as err:
        raise DownloadError(f"{url}: transfer cut short, {len(err.partial)} bytes of the last block read "
                            f"({err})") from err
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as err:
        raise DownloadError(f"could not download {url} ({err})") from err
    return target


@dataclass(frozen=True)
class Dataset:
    """Where a dataset comes from and how its archive maps onto the layout the loaders read.

    Attributes
    ----------
    url : str
        The official archive (zip).
    checksum : str or None
        ``"<algorithm>:<hex>"`` of the archive, where it is fixed (GitHub's archives are not byte-stable).
    members : tuple of (pattern, folder)
        Archive members whose path (below the archive's top folder, with ``strip_root``) matches ``pattern``
        (:mod:`fnmatch`) go to ``folder`` under their own name.
    manifest : str or None
        ``repro/manifests/<manifest>``: ``sha256  relative path`` of every file the layout must hold.
    count : int or None
        Number of images the layout must hold (where no manifest lists them).
    strip_root : bool
        The archive holds one top folder (as GitHub's do) that ``members`` do not name.
    note : str
        What the user must add by hand, printed after the download.
    """

    url: str
    checksum: object
    members: tuple
    manifest: object = None
    count: object = None
    strip_root: bool = False
    note: str = ""


DATASETS = {
    "osie": Dataset(
        url="https://github.com/NUS-VIP/predicting-human-gaze-beyond-pixels/archive/master.zip",
        checksum=None,
        members=(("data/stimuli/*.jpg", "stimuli"), ("data/eye/fixations.mat", ""), ("LICENSE", "")),
        manifest="osie.sha256", strip_root=True),
    "mit1003": Dataset(
        url="http://people.csail.mit.edu/tjudd/WherePeopleLook/ALLSTIMULI.zip",
        checksum="md5:0d7df8b954ecba69b6796e77b9afe4b6",
        members=(("ALLSTIMULI/*.jpeg", "stimuli"),),
        count=1003,
        note="MIT1003's fixations are not in ALLSTIMULI.zip: add a table with --fixations TABLE "
             "(see README, 'Real data and weights')"),
}


def _manifest(name):
    lines = (MANIFESTS / name).read_text().splitlines()
    return {path: digest for digest, path in (line.split(None, 1) for line in lines if line.strip())}


def verify_dataset(name, folder):
    """Raise DownloadError unless ``folder`` holds dataset ``name`` whole (every manifest file, with its SHA-256)."""
    spec, folder = DATASETS[name], Path(folder)
    if spec.manifest:
        for relative, expected in _manifest(spec.manifest).items():
            path = folder / relative
            if not path.is_file():
                raise DownloadError(f"{folder}: {relative} is missing")
            found = file_digest(path)
            if found != expected:
                raise DownloadError(f"{path}: SHA-256 {found} differs from the official file's {expected}")
    if spec.count is not None:
        images = [p for p in (folder / "stimuli").glob("*") if p.is_file()]
        if len(images) != spec.count:
            raise DownloadError(f"{folder / 'stimuli'}: {len(images)} images, the dataset has {spec.count}")


def _unpack(archive, spec, folder):
    """Extract the members of ``spec`` from ``archive`` into ``folder`` by their base names (no other paths)."""
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            path = member.filename.split("/", 1)[1] if spec.strip_root and "/" in member.filename else member.filename
            if member.is_dir():
                continue
            for pattern, sub in spec.members:
                if fnmatch.fnmatch(path, pattern):
                    out = folder / sub / Path(member.filename).name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zipped.open(member) as source, open(out, "wb") as sink:
                        shutil.copyfileobj(source, sink)
                    break


def download_dataset(name, data_dir, url=None, fixations=None, timeout=30, progress=True):
    """Download dataset ``name`` into ``data_dir/name``, verified, in the layout its loader reads.

    Parameters
    ----------
    name : {"osie", "mit1003"}
    data_dir : str or Path
        The data directory (e.g. ``DEEPGAZE_DATA``).
    url : str, optional
        Another address of the same archive (a mirror; the checks are the same).
    fixations : str or Path, optional
        MIT1003: a fixation table (CSV, optionally gzipped) copied to ``fixations.csv.gz``.
    timeout : float
    progress : bool

    Returns
    -------
    Path
        ``data_dir/name``. If it is already there and whole, nothing is downloaded.

    Raises
    ------
    DownloadError
        A failed or corrupt transfer, or a folder already there that is not the dataset whole; nothing is
        left behind (the download and unpacking happen in a temporary folder renamed when verified).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    spec, data_dir = DATASETS[name], Path(data_dir)
    target = data_dir / name
    if target.exists():
        verify_dataset(name, target)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(target)                   # what a killed download left
        work = data_dir / f".{name}.{os.getpid()}.part"
        try:
            archive = fetch(url or spec.url, work / "archive.zip", spec.checksum, timeout, progress)
            _unpack(archive, spec, work / name)
            verify_dataset(name, work / name)
            os.replace(work / name, target)
        except zipfile.BadZipFile as err:
            raise DownloadError(f"{url or spec.url}: corrupt zip archive ({err})") from err
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if fixations is not None:
        _copy_table(fixations, target / "fixations.csv.gz")
    return target


def _copy_table(table, target):
    """Copy a fixation table to ``target`` gzipped (read back first: it must load as a table)."""
    import gzip

    from .datasets import read_table

    read_table(table)                                   # a clear error now, not at the first experiment
    opener = gzip.open if str(table).endswith(".gz") else open
    with opener(table, "rb") as source, atomic_path(target) as tmp, gzip.open(tmp, "wb") as sink:
        shutil.copyfileobj(source, sink)
