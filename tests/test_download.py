"""Network and dataset downloads against a local HTTP server on 127.0.0.1 serving files and archives the tests
build from real files: success, a checksum mismatch, a truncated transfer; nothing is left behind by a failure."""
import dataclasses
import hashlib
import http.server
import threading
import time
import zipfile

import pytest

from repro import download
from repro.datasets import DATASETS, load_mit1003, load_osie


class Server:
    """A local HTTP server of ``files`` (``{path: bytes}``); ``truncate`` sends half a file but announces it whole,
    ``trickle`` sends one byte every 0.2 s."""

    def __init__(self):
        self.files, self.truncate, self.trickle = {}, set(), set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.trickle:
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(0.2)
                    return
                self.wfile.write(body[:len(body) // 2] if self.path in server.truncate else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture()
def server():
    running = Server()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def with_source(monkeypatch, name, **changes):
    """Dataset ``name`` of the registry, for this test, with ``changes`` to its source (a repro.datasets.Archive)."""
    spec = DATASETS[name]
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, source=dataclasses.replace(spec.source, **changes)))


@pytest.fixture(scope="module")
def osie_archive(osie_dir, tmp_path_factory):
    """OSIE as GitHub serves it: one top folder, ``data/stimuli``, ``data/eye/fixations.mat``, other files."""
    path = tmp_path_factory.mktemp("archive") / "master.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        root = "predicting-human-gaze-beyond-pixels-master"
        archive.write(osie_dir / "fixations.mat", f"{root}/data/eye/fixations.mat")
        for image in sorted((osie_dir / "stimuli").glob("*.jpg")):
            archive.write(image, f"{root}/data/stimuli/{image.name}")
        archive.write(osie_dir / "LICENSE", f"{root}/LICENSE")
        archive.writestr(f"{root}/lib/gbvs/LICENSE", "another licence")
        archive.writestr(f"{root}/README.md", "OSIE")
    return path.read_bytes()


def test_osie_download_unpacks_the_verified_layout_the_loader_reads(server, osie_archive, osie_dir, tmp_path):
    server.files["/master.zip"] = osie_archive
    folder = download.download_dataset("osie", tmp_path, url=f"{server.url}/master.zip", progress=False)
    assert folder == tmp_path / "osie" and leftovers(tmp_path) == ["osie"]
    assert leftovers(folder) == ["LICENSE", "fixations.mat", "stimuli"]
    assert (folder / "LICENSE").read_bytes() == (osie_dir / "LICENSE").read_bytes()
    stimuli, fixations = load_osie(folder, keep_first=False)
    assert len(stimuli) == 700 and len(fixations) == len(load_osie(osie_dir, keep_first=False)[1])
    # again: the folder is there and whole, nothing is fetched
    server.files.clear()
    assert download.download_dataset("osie", tmp_path, url=f"{server.url}/master.zip", progress=False) == folder


def test_an_osie_file_that_is_not_the_official_one_is_refused_and_nothing_is_left(server, osie_dir, tmp_path):
    with zipfile.ZipFile(tmp_path / "master.zip", "w") as archive:          # a valid archive, one wrong image
        archive.write(osie_dir / "fixations.mat", "root/data/eye/fixations.mat")
        for image in sorted((osie_dir / "stimuli").glob("*.jpg")):
            archive.write(osie_dir / "stimuli" / ("1002.jpg" if image.name == "1001.jpg" else image.name),
                          f"root/data/stimuli/{image.name}")
    server.files["/master.zip"] = (tmp_path / "master.zip").read_bytes()
    target = tmp_path / "data"
    with pytest.raises(download.DownloadError, match=r"stimuli/1001.jpg: SHA-256 .* differs from the official"):
        download.download_dataset("osie", target, url=f"{server.url}/master.zip", progress=False)
    assert leftovers(target) == []


def test_a_corrupt_archive_is_refused_and_nothing_is_left(server, osie_archive, tmp_path):
    damaged = bytearray(osie_archive)
    damaged[damaged.index(b"JFIF") + 2000] ^= 0xFF             # inside the first image (stored, not compressed)
    server.files["/master.zip"] = bytes(damaged)
    with pytest.raises(download.DownloadError, match=r"master.zip: corrupt zip archive \(Bad CRC-32 for file "
                                                     r"'.*/data/stimuli/1001.jpg'\)"):
        download.download_dataset("osie", tmp_path, url=f"{server.url}/master.zip", progress=False)
    assert leftovers(tmp_path) == []


def test_a_truncated_transfer_is_refused_and_nothing_is_left(server, osie_archive, tmp_path):
    server.files["/master.zip"] = osie_archive
    server.truncate.add("/master.zip")
    with pytest.raises(download.DownloadError, match="transfer cut short"):
        download.download_dataset("osie", tmp_path, url=f"{server.url}/master.zip", progress=False)
    assert leftovers(tmp_path) == []


def test_mit1003_archive_checksum_and_fixation_table(server, data_dir, tmp_path, monkeypatch):
    subset = data_dir / "mit1003-subset"
    images = sorted((subset / "stimuli").glob("*.jpg"))
    archive = tmp_path / "ALLSTIMULI.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for image in images:                                 # Judd's archive names them *.jpeg
            zipped.write(image, f"ALLSTIMULI/{image.stem}.jpeg")
        zipped.writestr("__MACOSX/ALLSTIMULI/._x.jpeg", "resource fork")
    body = archive.read_bytes()
    server.files["/ALLSTIMULI.zip"] = body
    target = tmp_path / "data"
    with pytest.raises(download.DownloadError, match=r"MD5 [0-9a-f]{32} differs from the expected 0d7df8b9"):
        download.download_dataset("mit1003", target, url=f"{server.url}/ALLSTIMULI.zip", progress=False)
    assert leftovers(target) == []
    with_source(monkeypatch, "mit1003", checksum=f"md5:{hashlib.md5(body).hexdigest()}", count=len(images))
    folder = download.download_dataset("mit1003", target, url=f"{server.url}/ALLSTIMULI.zip",
                                       fixations=subset / "fixations.csv.gz", progress=False)
    assert leftovers(folder) == ["fixations.csv.gz", "stimuli"] and len(leftovers(folder / "stimuli")) == 100
    stimuli, fixations = load_mit1003(folder, keep_first=False)
    expected = load_mit1003(subset, keep_first=False)[1]
    assert len(stimuli) == 100 and len(fixations) == len(expected)


def test_download_command_for_a_dataset(server, osie_archive, tmp_path, monkeypatch, capsys):
    from repro.__main__ import main
    server.files["/master.zip"] = osie_archive
    with_source(monkeypatch, "osie", url=f"{server.url}/master.zip")
    monkeypatch.setenv("DEEPGAZE_DATA", str(tmp_path))
    assert main(["download", "osie"]) == 0
    assert capsys.readouterr().out.strip() == f"osie: {tmp_path / 'osie'}"
    server.truncate.add("/master.zip")
    assert main(["download", "osie", "--to", str(tmp_path / "other")]) == 1
    assert capsys.readouterr().err.replace("\r", "\n").splitlines()[-1].startswith("error: ")


# -- networks --------------------------------------------------------------------------
def test_network_download_offline_says_where_to_put_the_file(tmp_path, monkeypatch):
    closed = "http://127.0.0.1:9/bvlc_alexnet.caffemodel"  # the discard port: connection refused
    monkeypatch.setitem(download.NETWORK_FILES, "bvlc_alexnet", [("bvlc_alexnet.caffemodel", closed,
                                                                   "sha1:" + "0" * 40)])
    with pytest.raises(download.DownloadError, match=r"place it at .*bvlc_alexnet.caffemodel \(SHA-1 0{40}\)"):
        download.download_network("bvlc_alexnet", tmp_path, timeout=5)
    assert leftovers(tmp_path) == []


def test_network_download_verifies_the_checksum(server, tmp_path, monkeypatch):
    body = b"the bytes of a caffemodel" * 1000
    server.files["/net.caffemodel"] = body
    good = hashlib.sha1(body).hexdigest()
    target = tmp_path / "out"
    monkeypatch.setitem(download.NETWORK_FILES, "bvlc_alexnet", [("net.caffemodel", f"{server.url}/net.caffemodel",
                                                                   "sha1:" + "f" * 40)])
    with pytest.raises(download.DownloadError, match=f"SHA-1 {good} differs from the expected f{{40}}"):
        download.download_network("bvlc_alexnet", target)
    assert leftovers(target) == []
    monkeypatch.setitem(download.NETWORK_FILES, "bvlc_alexnet", [("net.caffemodel", f"{server.url}/net.caffemodel",
                                                                   f"sha1:{good}")])
    assert download.download_network("bvlc_alexnet", target) == target
    assert (target / "net.caffemodel").read_bytes() == body
    server.files.clear()                                      # there and whole: nothing is fetched again
    assert download.download_network("bvlc_alexnet", target) == target


def test_network_download_command_fails_cleanly_offline(tmp_path, monkeypatch, capsys):
    from repro.__main__ import main

    closed = "http://127.0.0.1:9/x.caffemodel"
    monkeypatch.setitem(download.NETWORK_FILES, "bvlc_reference_caffenet", [("x.caffemodel", closed,
                                                                              "sha1:" + "0" * 40)])
    assert main(["download", "bvlc_reference_caffenet", "--to", str(tmp_path)]) == 1
    assert f"place it at {tmp_path / 'x.caffemodel'}" in capsys.readouterr().err


def test_only_datasets_with_a_source_download():
    assert DATASETS["demo"].source is None
    with pytest.raises(ValueError, match=r"unknown dataset 'demo'; choose one of \['mit1003', 'osie'\]"):
        download.download_dataset("demo", "unused")


# -- hostile mirrors and slow servers (issue 29) ------------------------------------------
def test_every_network_file_has_a_checksum():
    for name, files in download.NETWORK_FILES.items():
        for filename, _, checksum in files:
            algorithm, digest = checksum.split(":")
            assert algorithm in download.NAMES and len(digest) in (32, 40, 64), (name, filename)


def test_an_edited_deploy_prototxt_from_a_mirror_is_refused(server, weights_source, tmp_path, monkeypatch):
    official = (weights_source / "bvlc_alexnet/deploy.prototxt").read_text()
    monkeypatch.setenv("DEEPGAZE_MIRROR", server.url)
    target = tmp_path / "alexnet"
    entry = [f for f in download.NETWORK_FILES["bvlc_alexnet"] if f[0] == "deploy.prototxt"]
    monkeypatch.setitem(download.NETWORK_FILES, "bvlc_alexnet", entry)
    server.files["/deploy.prototxt"] = official.replace("stride: 4", "stride: 2", 1).encode()
    with pytest.raises(download.DownloadError, match=r"deploy.prototxt: network digest .* differs from the "
                                                     r"expected 28e31d9e"):
        download.download_network("bvlc_alexnet", target)
    assert leftovers(target) == []
    # the official network, whatever its comments and spacing, is accepted
    server.files["/deploy.prototxt"] = ("# BVLC AlexNet\n" + official.replace("  ", "    ")).encode()
    assert download.download_network("bvlc_alexnet", target) == target
    # a prototxt already there that is not the official one is fetched again
    (target / "deploy.prototxt").write_text(official.replace("stride: 4", "stride: 2", 1))
    assert download.download_network("bvlc_alexnet", target) == target
    assert (target / "deploy.prototxt").read_bytes() == server.files["/deploy.prototxt"]


@pytest.mark.parametrize("extra", ["data/stimuli/evil.jpg", "data/stimuli/deep/er/payload.jpg"])
def test_an_osie_archive_with_extra_members_is_refused_and_nothing_is_left(server, osie_archive, osie_dir,
                                                                           tmp_path, extra):
    path = tmp_path / "master.zip"
    path.write_bytes(osie_archive)
    with zipfile.ZipFile(path, "a") as archive:
        archive.write(osie_dir / "stimuli" / "1001.jpg", f"predicting-human-gaze-beyond-pixels-master/{extra}")
    server.files["/master.zip"] = path.read_bytes()
    target = tmp_path / "data"
    with pytest.raises(download.DownloadError, match=rf"{extra.split('/', 1)[1]}"):
        download.download_dataset("osie", target, url=f"{server.url}/master.zip", progress=False)
    assert leftovers(target) == []


def test_member_patterns_do_not_cross_folders():
    assert download.member_matches("data/stimuli/1001.jpg", "data/stimuli/*.jpg")
    assert not download.member_matches("data/stimuli/deep/er/payload.jpg", "data/stimuli/*.jpg")
    assert not download.member_matches("data/stimuli/1001.JPG", "data/stimuli/*.jpg")


def test_a_server_that_trickles_bytes_meets_the_overall_deadline(server, tmp_path):
    server.files["/net.caffemodel"] = b"x" * 1000                # 200 s at one byte every 0.2 s
    server.trickle.add("/net.caffemodel")
    start = time.monotonic()
    with pytest.raises(download.DownloadError, match=r"net.caffemodel: not complete after the deadline of 2 s "
                                                     r"\(\d+ of 1000 bytes\)"):
        download.fetch(f"{server.url}/net.caffemodel", tmp_path / "net.caffemodel", timeout=1, deadline=2,
                       progress=False)
    assert time.monotonic() - start < 5
    assert leftovers(tmp_path) == []
