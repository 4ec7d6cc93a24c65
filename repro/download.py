"""Downloading official files, each checked against a checksum, never left half-written.

The one module that fetches: networks (:data:`NETWORK_FILES`) and datasets (the ``source`` of each dataset of
:data:`repro.datasets.DATASETS`, a :class:`repro.datasets.Archive`) come from their official sources:

- **BVLC networks** (AlexNet, CaffeNet): the caffemodel from BVLC's server, checked by its SHA-1, and
  ``deploy.prototxt`` from BVLC's repository, checked by the digest of the network it describes
  (:func:`repro.caffe.network_digest`: every layer and parameter, blind to comments, spacing and the V1/V2
  layout, which differ between the repository's versions of the same network), into ``weights/<name>``
  (where :func:`repro.paths.find_weights` looks).
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
an interrupted, truncated or corrupt transfer leaves nothing behind. Every transfer has an overall deadline
(:data:`DEADLINE`, besides the ``timeout`` of each wait for the server), so a server that trickles bytes
cannot keep it running. Archive members are taken by their exact place: ``*`` in a member pattern does not
cross ``/``, a file under a pattern's folder that the pattern does not name is refused, and an unpacked file
that the manifest does not list is refused; the archive is then removed.
"""
import fnmatch
import http.client
import os
import posixpath
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .datasets import DATASETS, read_table
from .paths import atomic_path, file_digest, mirrored, remove_stale_parts, weights_dir

__all__ = ["DownloadError", "checksum_of", "member_matches", "DEADLINE", "fetch", "NETWORK_FILES", "download_network",
           "downloadable_dataset", "download_dataset", "verify_dataset"]

MANIFESTS = Path(__file__).resolve().parent / "manifests"


NAMES = {"sha1": "SHA-1", "sha256": "SHA-256", "md5": "MD5",
         "network-sha1": "network digest (repro.caffe.network_digest)"}

_BVLC = "http://dl.caffe.berkeleyvision.org"
_GITHUB = "https://raw.githubusercontent.com/BVLC/caffe/master/models"

#: The official BVLC networks: name -> [(file name, url, checksum)]. A checksum is ``"<algorithm>:<hex>"``
#: (:func:`fetch`); a prototxt's is ``"network-sha1:<hex>"``, the digest of the network it describes
#: (:func:`repro.caffe.network_digest`).
NETWORK_FILES = {
    "bvlc_alexnet": [
        ("bvlc_alexnet.caffemodel", f"{_BVLC}/bvlc_alexnet.caffemodel",
         "sha1:9116a64c0fbe4459d18f4bb6b56d647b63920377"),
        ("deploy.prototxt", f"{_GITHUB}/bvlc_alexnet/deploy.prototxt",
         "network-sha1:28e31d9ec3641bbd8a9ea7776f7f78637f2024dd")],
    "bvlc_reference_caffenet": [
        ("bvlc_reference_caffenet.caffemodel", f"{_BVLC}/bvlc_reference_caffenet.caffemodel",
         "sha1:4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"),
        ("deploy.prototxt", f"{_GITHUB}/bvlc_reference_caffenet/deploy.prototxt",
         "network-sha1:2c817da1efdad4dec1f06ee9f968d27320f7b432")],
}

#: Seconds a whole transfer may take (the caffemodels are 233 MB: 4 minutes at 1 MB/s).
DEADLINE = 3600.0


class DownloadError(OSError):
    """A transfer that failed, was cut short, took longer than its deadline or does not match its checksum."""


def checksum_of(path, algorithm):
    """Hex digest of a file by ``algorithm``: a :mod:`hashlib` name, or ``"network-sha1"`` for a prototxt
    (:func:`repro.caffe.network_digest` of the layers it describes; a file that is no valid prototxt has
    none and raises DownloadError)."""
    from . import caffe

    if algorithm != "network-sha1":
        return file_digest(path, algorithm)
    try:
        return caffe.network_digest(caffe.parse_prototxt(path)[1])
    except caffe.CaffeError as err:
        raise DownloadError(f"not the expected network: {err}") from err


def _check(url, path, checksum):
    """Raise DownloadError unless the file ``path`` fetched from ``url`` has ``checksum`` (``"<algorithm>:<hex>"``)."""
    algorithm, expected = checksum.split(":")
    found = checksum_of(path, algorithm)
    if found != expected:
        raise DownloadError(f"{url}: {NAMES.get(algorithm, algorithm)} {found} differs from the expected {expected}")


def fetch(url, target, checksum=None, timeout=30, progress=True, deadline=None):
    """Download ``url`` to ``target`` with a progress bar; nothing is left there unless it is whole and fits.

    Parameters
    ----------
    url : str
        Fetched from ``DEEPGAZE_MIRROR`` instead when that is set (:func:`repro.paths.mirrored`).
    target : str or Path
    checksum : str, optional
        ``"<algorithm>:<hex digest>"``, e.g. ``"sha1:9116a6..."``, ``"md5:0d7df8..."`` or, for a prototxt,
        ``"network-sha1:..."`` (:func:`checksum_of`).
    timeout : float
        Seconds to wait for the server at each step (connecting, each read).
    progress : bool
    deadline : float, optional
        Seconds the whole transfer may take (default :data:`DEADLINE`); checked after every read, so it is
        exceeded by at most ``timeout``.

    Raises
    ------
    DownloadError
        The server could not be reached, sent fewer bytes than it announced, took longer than the deadline,
        or the checksum differs.
    """
    from tqdm.auto import tqdm

    target, url = Path(target), mirrored(url)
    deadline = DEADLINE if deadline is None else float(deadline)
    if not (timeout > 0 and deadline > 0):
        raise ValueError(f"timeout ({timeout}) and deadline ({deadline}) must be positive numbers of seconds")
    end = time.monotonic() + deadline
    try:
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                received = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                    for block in iter(lambda: response.read1(1 << 20), b""):   # what has come, not 1 MB
                        out.write(block)
                        received += len(block)
                        bar.update(len(block))
                        if time.monotonic() > end:
                            raise DownloadError(f"{url}: not complete after the deadline of {deadline:g} s "
                                                f"({received} of {total or 'an unknown number of'} bytes)")
            if total is not None and received != total:
                raise DownloadError(f"{url}: transfer cut short, {received} of {total} bytes")
            if checksum:
                _check(url, tmp, checksum)
    except http.client.IncompleteRead as err:
        raise DownloadError(f"{url}: transfer cut short, {len(err.partial)} bytes of the last block read "
                            f"({err})") from err
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as err:
        raise DownloadError(f"could not download {url} ({err})") from err
    return target


def download_network(name, folder=None, timeout=30, deadline=None):
    """Download an official BVLC network (caffemodel and deploy.prototxt, each checked by its checksum).

    Parameters
    ----------
    name : {"bvlc_alexnet", "bvlc_reference_caffenet"}
        A key of :data:`NETWORK_FILES`.
    folder : str or Path, optional
        Destination; default ``weights_dir() / name``. Files already there with the right
        checksum are kept.
    timeout, deadline : float
        As in :func:`fetch`.

    Returns
    -------
    Path
        The folder holding the files.
    """
    if name not in NETWORK_FILES:
        raise ValueError(f"unknown network {name!r}; choose one of {sorted(NETWORK_FILES)}")
    folder = Path(folder) if folder is not None else weights_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    for filename, url, checksum in NETWORK_FILES[name]:
        target = folder / filename
        if target.is_file() and _has_checksum(target, checksum):
            continue
        try:
            fetch(url, target, checksum, timeout=timeout, deadline=deadline)
        except DownloadError as err:
            algorithm, expected = checksum.split(":")
            raise DownloadError(f"{err}. Offline? Fetch it elsewhere and place it at {target} "
                                f"({NAMES.get(algorithm, algorithm)} {expected})") from err
    return folder


def _has_checksum(path, checksum):
    algorithm, expected = checksum.split(":")
    try:
        return checksum_of(path, algorithm) == expected
    except DownloadError:
        return False


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


def _expected_files(source):
    """What an unpacked dataset may hold: its manifest's files and the archive's members named exactly
    (no wildcard), as paths relative to its folder; None where no manifest lists them."""
    if not source.manifest:
        return None
    exact = {posixpath.join(sub, posixpath.basename(pattern)) for pattern, sub in source.members
             if not any(c in pattern for c in "*?[")}
    return set(_manifest(source.manifest)) | exact


def verify_dataset(name, folder, unpacked=False):
    """Raise DownloadError unless ``folder`` holds dataset ``name`` whole (every manifest file, with its SHA-256,
    or as many images as its source says); with ``unpacked`` (a fresh download), also if it holds any file the
    manifest does not list."""
    source, folder = downloadable_dataset(name).source, Path(folder)
    expected_files = _expected_files(source)
    if unpacked and expected_files is not None:
        found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
        foreign = [path for path in found if path not in expected_files]
        if foreign:
            raise DownloadError(f"{folder}: the archive holds {len(foreign)} file(s) the manifest "
                                f"{source.manifest} does not list, e.g. {foreign[0]}; refused and removed")
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


def member_matches(path, pattern):
    """Whether the archive path ``path`` matches ``pattern`` (:mod:`fnmatch`) part by part: ``*`` does not
    cross ``/`` (``data/stimuli/*.jpg`` takes ``data/stimuli/1001.jpg``, not ``data/stimuli/a/b.jpg``)."""
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))


def _member_target(path, spec):
    """The folder (below the dataset's) of an archive member at ``path``, or None if it is not a member of
    ``spec``. An archive without a checksum of its own (one checked member by member) may hold no other file
    inside a pattern's folder: DownloadError."""
    for pattern, sub in spec.members:
        if member_matches(path, pattern):
            return sub
    for pattern, _ in spec.members if spec.checksum is None else ():
        folder = posixpath.dirname(pattern)
        if folder and path.startswith(folder + "/"):
            raise DownloadError(f"the archive's member {path!r} is in {folder}/ but is not a file the dataset "
                                f"has there ({pattern}); refused")
    return None


def _unpack(archive, spec, folder):
    """Extract the members of ``spec`` (an :class:`repro.datasets.Archive`) from the zip file ``archive`` into
    ``folder`` by their base names (no other paths)."""
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            path = member.filename.split("/", 1)[1] if spec.strip_root and "/" in member.filename else member.filename
            sub = None if member.is_dir() else _member_target(path, spec)
            if sub is None:
                continue
            out = folder / sub / posixpath.basename(member.filename)
            out.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(member) as source, open(out, "wb") as sink:
                shutil.copyfileobj(source, sink)


def download_dataset(name, data_dir, url=None, fixations=None, timeout=30, progress=True, deadline=None):
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
    timeout, deadline : float
        As in :func:`fetch`.
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
            archive = fetch(url or source.url, work / "archive.zip", source.checksum, timeout, progress, deadline)
            _unpack(archive, source, work / name)
            verify_dataset(name, work / name, unpacked=True)
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
