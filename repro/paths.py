"""Where the package finds data, weights and caches, and how it writes and checks files there.

Nothing here names a machine's absolute path: every location is an argument,
an environment variable, or relative to the source checkout.

=====================  ==========================================  =========================
what                   environment variable                        default
=====================  ==========================================  =========================
data directory         ``DEEPGAZE_DATA``                           (none: must be given)
cache directory        ``DEEPGAZE_CACHE``                          ``<checkout>/.cache``
converted weights      ``DEEPGAZE_WEIGHTS``                        ``<checkout>/weights``
download mirror        ``DEEPGAZE_MIRROR``                         (none: official sources)
=====================  ==========================================  =========================
"""
import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["PROJECT_ROOT", "data_dir", "mirrored", "cache_dir", "weights_dir", "find_weights", "file_digest",
           "remove_stale_parts", "atomic_path", "sources_digest"]

#: The source checkout (the folder holding ``repro/``, ``weights/``, ``experiments/``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir(path=None, required=True):
    """Return the data directory.

    Parameters
    ----------
    path : str or Path, optional
        Explicit directory; wins over ``DEEPGAZE_DATA``.
    required : bool
        If True, raise when no directory is configured or it does not exist;
        otherwise return None in that case.

    Returns
    -------
    Path or None
    """
    given = path if path is not None else os.environ.get("DEEPGAZE_DATA")
    if not given:
        if required:
            raise FileNotFoundError(
                "no data directory: pass one explicitly or set DEEPGAZE_DATA "
                "(see README.md, 'Real data and weights')")
        return None
    found = Path(given).expanduser().resolve()
    if not found.is_dir():
        if required:
            raise FileNotFoundError(f"data directory {found} does not exist "
                                    f"(from {'argument' if path is not None else 'DEEPGAZE_DATA'})")
        return None
    return found


def mirrored(url):
    """``url``, or the file of the same name under ``DEEPGAZE_MIRROR`` (a base URL) when that is set.

    For machines without access to the official sources (and for the tests, a local server); every
    download is checked against the official checksums all the same.
    """
    mirror = os.environ.get("DEEPGAZE_MIRROR")
    return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if mirror else url


def cache_dir(*parts):
    """Return (and create) a folder under the project cache, ``DEEPGAZE_CACHE`` or ``<checkout>/.cache``."""
    root = Path(os.environ.get("DEEPGAZE_CACHE") or PROJECT_ROOT / ".cache").expanduser()
    folder = root.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def weights_dir():
    """Return (and create) the folder of converted network weights, ``DEEPGAZE_WEIGHTS`` or ``<checkout>/weights``."""
    folder = Path(os.environ.get("DEEPGAZE_WEIGHTS") or PROJECT_ROOT / "weights").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _network_files(folder):
    """``(deploy.prototxt, last *.caffemodel by name)`` in ``folder``, or None where one of them is missing."""
    models = sorted(Path(folder).glob("*.caffemodel"))
    prototxt = Path(folder) / "deploy.prototxt"
    return (prototxt, models[-1]) if prototxt.is_file() and models else None


def find_weights(name, folder=None, data=None):
    """The Caffe files of network ``name``: ``deploy.prototxt`` and a ``*.caffemodel`` (the last by name).

    The one place the package looks for a network's weights (the experiments' ``--weights``, ``train``,
    ``predict --network``). The first of these folders that holds both files wins:

    1. ``folder``, when given (and then only it);
    2. ``<data>/weights/<name>``, the data directory's copy (the shared data the committed results used);
    3. ``weights_dir()/<name>``, where ``python -m repro download NAME`` puts it.

    Parameters
    ----------
    name : str
        The network's folder name, e.g. ``"bvlc_alexnet"``.
    folder : str or Path, optional
    data : str or Path, optional
        The data directory (e.g. :func:`data_dir` with ``required=False``); None: not searched.

    Returns
    -------
    (Path, Path) or None
        ``(prototxt, caffemodel)``; None when no folder holds both.

    Raises
    ------
    FileNotFoundError
        ``folder`` is given and lacks one of the files.
    """
    if folder is not None:
        found = _network_files(folder)
        if found is None:
            raise FileNotFoundError(f"{folder}: no deploy.prototxt and *.caffemodel there")
        return found
    candidates = ([Path(data) / "weights" / name] if data is not None else []) + [weights_dir() / name]
    return next(filter(None, map(_network_files, candidates)), None)


def file_digest(path, algorithm="sha256", chunk=1 << 22):
    """Hex digest of a file (``algorithm``: any :mod:`hashlib` name)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:         # someone else's process
        return True
    return True


def remove_stale_parts(path):
    """Delete the temporary files (or folders) ``.<name>.<pid>.*part`` of earlier writes of ``path`` whose
    process died (e.g. SIGKILL)."""
    path = Path(path)
    for part in path.parent.glob(f".{path.name}.*part"):
        pid = part.name[len(path.name) + 2:].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            if part.is_dir():
                shutil.rmtree(part, ignore_errors=True)
            else:
                part.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary file name beside ``path``; rename it to ``path`` only if the block succeeds.

    An interrupted or failing write therefore never leaves a half-written file under the real name,
    and the temporary file is removed on any exception. A process killed outright (SIGKILL, power loss)
    cannot remove its own: the temporary name holds the writer's process id, ``.<name>.<pid>.<random>.part``,
    and the next write of ``path`` deletes those of processes no longer alive. The file gets the
    permissions of a file created normally (``0o666`` less the user's umask).

    Examples
    --------
    >>> with atomic_path("model.h5") as tmp:          # doctest: +SKIP
    ...     write_hdf5(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
    os.close(handle)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def sources_digest(root=PROJECT_ROOT, exclude=()):
    """SHA-1 of the package's sources: every ``repro/**/*.py`` by relative path and content.

    What cached results are keyed by (fits of the experiments' grid, executed notebooks), so that a result
    computed by other code is never reused: any change to the sources counts, a comment included.

    Parameters
    ----------
    root : str or Path
        The checkout holding ``repro/``.
    exclude : sequence of str
        Paths relative to ``repro/`` (e.g. ``"predict.py"``; a folder ending in ``/``, e.g. ``"saliency_models/"``)
        left out: modules that do not take part in the result.
    """
    package = Path(root) / "repro"
    digest = hashlib.sha1()
    folders = [entry for entry in exclude if entry.endswith("/")]
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative not in exclude and not any(relative.startswith(folder) for folder in folders):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
