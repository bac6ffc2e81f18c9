"""`pe data coco` against a local HTTP server serving a small zip, and the defaults of `pe train`
(`--data` from $PE_DATA or the COCO folder, `-o` from the style's name).

The server behaves like cocodataset.org's (an S3 bucket) where it matters: it answers a Range
request with 206 and the rest of the file, and can be told to drop the connection part-way (an
interrupted download) or to ignore Range (a server that sends 200 and the whole file)."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace

import pytest
from helpers import assert_one_line_error
from typer.testing import CliRunner

from perceptual_edge.cli import app
from perceptual_edge.errors import InputError, UnavailableError
from perceptual_edge.train import datasets

runner = CliRunner()


def _zip_bytes(names: list[str]) -> bytes:
    from perceptual_edge.image import encode_image
    from perceptual_edge.samples import content_image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("train2014/", b"")
        for i, name in enumerate(names):
            zf.writestr(name, encode_image(content_image(i, 24, 32), "JPEG"))
    return buf.getvalue()


class _Server:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.drop_after: int | None = None  # bytes sent before the connection is cut, once
        self.honour_range = True
        self.ranges: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = 0
                if rng and outer.honour_range:
                    start = int(rng.removeprefix("bytes=").rstrip("-"))
                    if start >= len(outer.body):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.body) - 1}/*")
                else:
                    self.send_response(200)
                data = outer.body[start:]
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if outer.drop_after is not None:
                    data, outer.drop_after = data[: outer.drop_after], None
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/train2014.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[_Server]:
    names = [f"train2014/COCO_train2014_{i:012d}.jpg" for i in (5, 1, 3, 2, 4)]
    s = _Server(_zip_bytes(names))
    yield s
    s.httpd.shutdown()


def _dataset(s: _Server) -> datasets.Dataset:
    md5 = hashlib.md5(s.body).hexdigest()
    return replace(datasets.COCO_TRAIN2014, url=s.url, md5=md5, images=5)


def test_download_resumes_with_range_after_a_dropped_connection(server, tmp_path):
    dest = tmp_path / "train2014.zip"
    server.drop_after = len(server.body) // 3
    with pytest.raises(UnavailableError, match="run the command again to resume"):
        datasets.download(server.url, dest, _dataset(server).md5)
    part = tmp_path / "train2014.zip.part"
    assert part.stat().st_size == len(server.body) // 3 and not dest.exists()
    seen: list[tuple[int, int | None]] = []
    datasets.download(server.url, dest, _dataset(server).md5, lambda d, t: seen.append((d, t)))
    assert server.ranges == [None, f"bytes={len(server.body) // 3}-"]
    assert dest.read_bytes() == server.body and not part.exists()
    assert seen[0] == (len(server.body) // 3, len(server.body)) and seen[-1][0] == len(server.body)


def test_a_server_that_ignores_range_restarts_the_download(server, tmp_path):
    dest = tmp_path / "train2014.zip"
    (tmp_path / "train2014.zip.part").write_bytes(b"stale bytes that are not the file")
    server.honour_range = False
    datasets.download(server.url, dest, _dataset(server).md5)
    assert dest.read_bytes() == server.body  # not the stale prefix + the whole file


def test_a_whole_part_left_before_the_rename_is_finished_not_refetched(server, tmp_path):
    (tmp_path / "train2014.zip.part").write_bytes(server.body)
    datasets.download(server.url, tmp_path / "train2014.zip", _dataset(server).md5)  # 416
    assert (tmp_path / "train2014.zip").read_bytes() == server.body


def test_checksum_mismatch_deletes_the_part_and_says_so(server, tmp_path):
    with pytest.raises(UnavailableError, match="is not the published"):
        datasets.download(server.url, tmp_path / "train2014.zip", "0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_one_clear_error(tmp_path):
    with pytest.raises(UnavailableError, match="download of http://127.0.0.1:9/x.zip failed"):
        datasets.download("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", None, timeout=5)


def test_fetch_unpacks_all_or_the_first_n_by_name_and_a_second_run_does_nothing(server, tmp_path):
    ds = _dataset(server)
    logs: list[str] = []
    sub = datasets.fetch_dataset(ds, tmp_path, subset=2, keep_zip=True, log=logs.append)
    assert sub == tmp_path / "train2014-2"
    assert sorted(p.name for p in sub.iterdir()) == [
        "COCO_train2014_000000000001.jpg", "COCO_train2014_000000000002.jpg"]  # fmt: skip
    full = datasets.fetch_dataset(ds, tmp_path, log=logs.append)  # the kept zip, not the net
    assert len(server.ranges) == 1 and "downloaded before" in logs[-2]
    assert len(list(full.iterdir())) == 5 and not (tmp_path / "train2014.zip").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    datasets.fetch_dataset(ds, tmp_path, log=logs.append)
    assert "already there" in logs[-1] and len(server.ranges) == 1


def test_unpack_refuses_paths_outside_the_folder_and_corrupt_archives(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.jpg", b"x")
        zf.writestr("train2014/../../escape.jpg", b"x")
    with pytest.raises(InputError, match="no images under train2014/"):
        datasets.unpack(evil, tmp_path, datasets.COCO_TRAIN2014)
    assert not (tmp_path.parent / "escape.jpg").exists()
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="not a readable zip"):
        datasets.unpack(bad, tmp_path, datasets.COCO_TRAIN2014)


def test_pe_data_coco_cli(server, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "COCO_TRAIN2014", _dataset(server))
    r = runner.invoke(app, ["data", "coco", "--dir", str(tmp_path), "--subset", "3", "-q"])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "train2014-3").iterdir())) == 3
    r = runner.invoke(app, ["data", "coco", "--dir", str(tmp_path / "b"), "--subset", "9", "-q"])
    assert_one_line_error(r, 2, "--subset 9: MS-COCO train2014 has 5 images")
    assert len(server.ranges) == 1  # refused before downloading


# ------------------------------------------------------------------- pe train's defaults


def test_resolve_data_order_and_the_error_that_names_all_three_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("PE_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PE_DATA", raising=False)
    with pytest.raises(InputError) as e:
        datasets.resolve_data(None, "style")
    msg = str(e.value)
    assert "--data DIR" in msg and "$PE_DATA=DIR" in msg and "`pe data coco`" in msg
    with pytest.raises(InputError, match="pe data coco --subset 10000"):
        datasets.resolve_data(None, "sr")
    full = tmp_path / "home" / "coco" / "train2014"
    full.mkdir(parents=True)
    assert datasets.resolve_data(None, "style") == full
    assert datasets.resolve_data(None, "sr") == full
    sub = tmp_path / "home" / "coco" / "train2014-10000"
    sub.mkdir()
    assert datasets.resolve_data(None, "sr") == sub  # the paper's SR set when it is there
    monkeypatch.setenv("PE_DATA", str(tmp_path))
    assert datasets.resolve_data(None, "style") == tmp_path
    assert datasets.resolve_data(tmp_path / "x", "style") == tmp_path / "x"
    monkeypatch.setenv("PE_DATA", str(tmp_path / "missing"))
    with pytest.raises(InputError, match=r"\$PE_DATA=.*missing: no such folder"):
        datasets.resolve_data(None, "style")


def test_pe_train_style_with_only_a_style_image(tiny_data, tiny_style, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PE_DATA_HOME", str(tmp_path / "nowhere"))
    monkeypatch.delenv("PE_DATA", raising=False)
    r = runner.invoke(app, ["train", "style", "--style", str(tiny_style)])
    assert_one_line_error(r, 2, "no training images: pass --data DIR")
    monkeypatch.setenv("PE_DATA", str(tiny_data))
    tiny = ["--image-size", "32", "--batch-size", "2", "--iterations", "2", "--loss-net",
            "random", "--device", "cpu", "-q", "--sample-every", "0"]  # fmt: skip
    r = runner.invoke(app, ["train", "style", "--style", str(tiny_style), *tiny])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "style.pth").is_file()  # named after the style image, here
    r = runner.invoke(app, ["train", "style", "--style", str(tiny_style), *tiny])
    assert_one_line_error(r, 3, "style.pth exists; pass --overwrite")
    r = runner.invoke(app, ["train", "sr", "--factor", "4", *tiny[:-2]])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "sr4.pth").is_file()
