"""The downloader against a real HTTP server on 127.0.0.1 serving fixture files."""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

from data_prep.catalog import SOURCE_FILES
from data_prep.config import PrepConfig
from data_prep.download import DownloadError, OfflineError, download, download_file, sha256_of

APPLIANCES = next(s for s in SOURCE_FILES if s.local_name == "single_qa_Appliances.json.gz")
VIDEO_GAMES = next(s for s in SOURCE_FILES if s.local_name == "single_qa_Video_Games.json.gz")
PHONES = next(
    s for s in SOURCE_FILES if s.local_name == "single_qa_Cell_Phones_and_Accessories.json.gz"
)
BABY_MULTI = next(s for s in SOURCE_FILES if s.local_name == "multiple_QA_Baby.json.gz")


class FixtureServer:
    """Serves url path -> (bytes, mode); mode 'truncate' announces the full length but
    sends half, 'flaky' answers 503 once before serving."""

    def __init__(self, routes: dict[str, tuple[bytes, str]]):
        self.routes = routes
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                body, mode = server.routes.get(self.path, (b"", "missing"))
                if mode == "missing":
                    self.send_error(404)
                    return
                if mode == "flaky" and server.hits[self.path] == 1:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if mode == "truncate" else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(shared_data):
    appliances = (shared_data / APPLIANCES.local_name).read_bytes()
    games = (shared_data / VIDEO_GAMES.local_name).read_bytes()
    baby = gzip.compress(b"{'asin': 'x', 'questions': []}\n")
    srv = FixtureServer(
        {
            "/qa/qa_Appliances.json.gz": (appliances, "ok"),
            "/qa/qa_Video_Games.json.gz": (games, "truncate"),
            # The shared phones file is the first 10,000 lines only: a real checksum mismatch.
            "/qa/qa_Cell_Phones_and_Accessories.json.gz": (
                (shared_data / PHONES.local_name).read_bytes(),
                "ok",
            ),
            "/qa/icdm/QA_Baby.json.gz": (baby, "flaky"),
        }
    )
    yield srv
    srv.close()


def config_for(tmp_path: Path, url: str) -> PrepConfig:
    return PrepConfig(data_dir=str(tmp_path), base_url=url, retries=2, backoff=0.01, timeout=5)


def test_valid_file_is_saved_and_skipped_the_second_time(server, tmp_path):
    config = config_for(tmp_path, server.url)
    path = download_file(APPLIANCES, config.raw_path, config)
    assert path == config.raw_path / "single_qa_Appliances.json.gz"
    assert sha256_of(path) == APPLIANCES.sha256
    download_file(APPLIANCES, config.raw_path, config)
    assert server.hits["/qa/qa_Appliances.json.gz"] == 1


def test_checksum_mismatch_keeps_nothing(server, tmp_path):
    config = config_for(tmp_path, server.url)
    with pytest.raises(DownloadError, match="does not match the published"):
        download_file(PHONES, config.raw_path, config)
    assert server.hits["/qa/qa_Cell_Phones_and_Accessories.json.gz"] == 3  # 1 + 2 retries
    assert list(config.raw_path.iterdir()) == []


def test_truncated_download_never_looks_complete(server, tmp_path):
    config = config_for(tmp_path, server.url)
    with pytest.raises(DownloadError, match="cut short"):
        download_file(VIDEO_GAMES, config.raw_path, config)
    assert list(config.raw_path.iterdir()) == []


def test_damaged_file_is_fetched_again(server, tmp_path):
    config = config_for(tmp_path, server.url)
    target = config.raw_path / APPLIANCES.local_name
    target.parent.mkdir()
    target.write_bytes(b"not the original")
    download_file(APPLIANCES, config.raw_path, config)
    assert sha256_of(target) == APPLIANCES.sha256


def test_retry_after_server_error_and_file_without_published_checksum(server, tmp_path):
    config = config_for(tmp_path, server.url)
    assert download(config, [BABY_MULTI]) == [config.raw_path / "multiple_QA_Baby.json.gz"]
    assert server.hits["/qa/icdm/QA_Baby.json.gz"] == 2


def test_failures_are_collected_and_good_files_kept(server, tmp_path):
    config = config_for(tmp_path, server.url)
    with pytest.raises(DownloadError, match="2 of 3 files failed"):
        download(config, [APPLIANCES, PHONES, VIDEO_GAMES])
    assert [p.name for p in config.raw_path.iterdir()] == [APPLIANCES.local_name]


def test_offline_fails_fast_and_says_how_to_use_local_files(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    config = PrepConfig(
        data_dir=str(tmp_path), base_url=f"http://127.0.0.1:{closed_port}/", backoff=5
    )
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="raw_dir="):
        download(config)
    assert time.perf_counter() - start < 5  # no backoff waits: it gave up at the first file
