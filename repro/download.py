"""Downloading official files, each checked against a checksum, never left half-written.

The one module that fetches: networks (:data:`NETWORK_FILES`) and datasets (the ``source`` of each dataset of
:data:`repro.datasets.DATASETS`, a :class:`repro.datasets.Archive`) come from their official sources:

- **BVLC networks** (AlexNet, CaffeNet): the caffemodel from BVLC's server, checked by its SHA-1, and
  ``deploy.prototxt`` from BVLC's repository, into ``weights/<name>`` (where :func:`repro.paths.find_weights`
  looks).
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
from pathlib import Path

from .datasets import DATASETS, read_table
from .paths import atomic_path, file_digest, mirrored, remove_stale_parts, weights_dir

__all__ = ["DownloadError", "fetch", "NETWORK_FILES", "download_network", "downloadable_dataset", "download_dataset",
           "verify_dataset"]

MANIFESTS = Path(__file__).resolve().parent / "manifests"


NAMES = {"sha1": "SHA-1", "sha256": "SHA-256", "md5": "MD5"}

_BVLC = "http://dl.caffe.berkeleyvision.org"
_GITHUB = "https://raw.githubusercontent.com/BVLC/caffe/master/models"

#: The official BVLC networks: name -> [(file name, url, sha1 or None)].
NETWORK_FILES = {
    "bvlc_alexnet": [
        ("bvlc_alexnet.caffemodel", f"{_BVLC}/bvlc_alexnet.caffemodel",
         "9116a64c0fbe4459d18f4bb6b56d647b63920377"),
        ("deploy.prototxt", f"{_GITHUB}/bvlc_alexnet/deploy.prototxt", None)],
    "bvlc_reference_caffenet": [
        ("bvlc_reference_caffenet.caffemodel", f"{_BVLC}/bvlc_reference_caffenet.caffemodel",
         "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"),
        ("deploy.prototxt", f"{_GITHUB}/bvlc_reference_caffenet/deploy.prototxt", None)],
}


class DownloadError(OSError):
    """A transfer that failed, was cut short or does not match its checksum."""


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


def download_network(name, folder=None, timeout=30):
    """Download an official BVLC network (caffemodel with checksum, deploy.prototxt).

    Parameters
    ----------
    name : {"bvlc_alexnet", "bvlc_reference_caffenet"}
        A key of :data:`NETWORK_FILES`.
    folder : str or Path, optional
        Destination; default ``weights_dir() / name``. Files already there with the right
        checksum are kept.
    timeout : float

    Returns
    -------
    Path
        The folder holding the files.
    """
    if name not in NETWORK_FILES:
        raise ValueError(f"unknown network {name!r}; choose one of {sorted(NETWORK_FILES)}")
    folder = Path(folder) if folder is not None else weights_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    for filename, url, sha1 in NETWORK_FILES[name]:
        target = folder / filename
        if target.is_file() and (sha1 is None or file_digest(target, "sha1") == sha1):
            continue
        try:
            fetch(url, target, f"sha1:{sha1}" if sha1 else None, timeout=timeout)
        except DownloadError as err:
            raise DownloadError(f"{err}. Offline? Fetch it elsewhere and place it at {target}"
                                + (f" (SHA-1 {sha1})" if sha1 else "")) from err
    return folder


def downloadable_dataset(name):
    """The dataset ``name`` of :data:`repro.datasets.DATASETS` (a :class:`repro.datasets.Dataset`), if it has a
    ``source`` to download it from.

    Raises
    ------
    ValueError
        No dataset of that name can be downloaded.
    """
    known = sorted(key for key, spec in DATASETS.items() if spec.source is not None)
    if name not in known:
        raise ValueError(f"unknown dataset {name!r}; choose one of {known}")
    return DATASETS[name]


def _manifest(name):
    lines = (MANIFESTS / name).read_text().splitlines()
    return {path: digest for digest, path in (line.split(None, 1) for line in lines if line.strip())}


def verify_dataset(name, folder):
    """Raise DownloadError unless ``folder`` holds dataset ``name`` whole (every manifest file, with its SHA-256,
    or as many images as its source says)."""
    source, folder = downloadable_dataset(name).source, Path(folder)
    if source.manifest:
        for relative, expected in _manifest(source.manifest).items():
            path = folder / relative
            if not path.is_file():
                raise DownloadError(f"{folder}: {relative} is missing")
            found = file_digest(path)
            if found != expected:
                raise DownloadError(f"{path}: SHA-256 {found} differs from the official file's {expected}")
    if source.count is not None:
        images = [p for p in (folder / "stimuli").glob("*") if p.is_file()]
        if len(images) != source.count:
            raise DownloadError(f"{folder / 'stimuli'}: {len(images)} images, the dataset has {source.count}")


def _unpack(archive, spec, folder):
    """Extract the members of ``spec`` (an :class:`repro.datasets.Archive`) from the zip file ``archive`` into
    ``folder`` by their base names (no other paths)."""
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
    """Download dataset ``name`` into its folder in ``data_dir``, verified, in the layout its loader reads.

    Parameters
    ----------
    name : {"osie", "mit1003"}
        A dataset of :data:`repro.datasets.DATASETS` with a ``source`` (:func:`downloadable_dataset`).
    data_dir : str or Path
        The data directory (e.g. ``DEEPGAZE_DATA``).
    url : str, optional
        Another address of the same archive (a mirror; the checks are the same).
    fixations : str or Path, optional
        MIT1003: a fixation table (CSV, optionally gzipped) copied to its ``fixation_file``, ``fixations.csv.gz``.
    timeout : float
    progress : bool

    Returns
    -------
    Path
        ``data_dir/<the first of its folders>`` (``data_dir/name``). If it is already there and whole, nothing
        is downloaded.

    Raises
    ------
    DownloadError
        A failed or corrupt transfer, or a folder already there that is not the dataset whole; nothing is
        left behind (the download and unpacking happen in a temporary folder renamed when verified).
    """
    spec, data_dir = downloadable_dataset(name), Path(data_dir)
    source, target = spec.source, data_dir / spec.folders[0]
    if target.exists():
        verify_dataset(name, target)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(target)                   # what a killed download left
        work = data_dir / f".{name}.{os.getpid()}.part"
        try:
            archive = fetch(url or source.url, work / "archive.zip", source.checksum, timeout, progress)
            _unpack(archive, source, work / name)
            verify_dataset(name, work / name)
            os.replace(work / name, target)
        except zipfile.BadZipFile as err:
            raise DownloadError(f"{url or source.url}: corrupt zip archive ({err})") from err
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if fixations is not None:
        _copy_table(fixations, target / spec.fixation_file)
    return target


def _copy_table(table, target):
    """Copy a fixation table to ``target`` gzipped (read back first: it must load as a table)."""
    import gzip

    read_table(table)                                   # a clear error now, not at the first experiment
    opener = gzip.open if str(table).endswith(".gz") else open
    with opener(table, "rb") as source, atomic_path(target) as tmp, gzip.open(tmp, "wb") as sink:
        shutil.copyfileobj(source, sink)
