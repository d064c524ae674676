"""Step 1: download the 38 original Amazon QA files, verified by their published sha256.

    python -m data_prep download data_dir=~/.qatune/data

A file is streamed to `<name>.part`, hashed while it streams, and renamed to its final name
only when the hash matches: a partial or damaged download never looks complete. Valid files
already present are skipped; damaged ones are fetched again.

Kept as our own (not `pooch`): urllib with a streamed sha256, retries with backoff and a
`.part` rename is what pooch would do here, and pooch would add a dependency and name its
cached files after their hashes, where the catalog's names are what data_prep reads.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from data_prep.catalog import SOURCE_FILES, SourceFile
from data_prep.config import PrepConfig
from data_prep.errors import DataError

log = logging.getLogger(__name__)
_CHUNK = 1 << 20


class DownloadError(DataError):
    pass


class OfflineError(DownloadError):
    """The host cannot be reached at all: retrying the other files is pointless."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def gzip_is_complete(path: Path) -> bool:
    """True when the whole gzip stream decompresses (for files with no published checksum)."""
    try:
        with gzip.open(path, "rb") as f:
            while f.read(_CHUNK):
                pass
        return path.stat().st_size > 0
    except (OSError, EOFError):
        return False


def is_valid(path: Path, source: SourceFile) -> bool:
    if not path.is_file():
        return False
    if source.sha256 is None:
        return gzip_is_complete(path)
    return sha256_of(path) == source.sha256


def _is_offline(err: BaseException) -> bool:
    reason = getattr(err, "reason", err)
    return isinstance(reason, socket.gaierror | ConnectionRefusedError)


def _fetch_once(url: str, part: Path, timeout: float, desc: str) -> str:
    """Stream url into part; return its sha256. Raises on a short body."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response:
        expected = int(response.headers.get("Content-Length") or 0) or None
        received = 0
        with (
            open(part, "wb") as out,
            tqdm(
                total=expected, unit="B", unit_scale=True, desc=desc, leave=False, disable=None
            ) as bar,
        ):
            for block in iter(lambda: response.read(_CHUNK), b""):
                out.write(block)
                digest.update(block)
                received += len(block)
                bar.update(len(block))
    if expected is not None and received != expected:
        raise DownloadError(f"{url}: got {received} of {expected} bytes (connection cut short)")
    return digest.hexdigest()


def download_file(source: SourceFile, raw_dir: Path, config: PrepConfig) -> Path:
    """Fetch one file unless a valid copy is present; retries with exponential backoff."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    target = raw_dir / source.local_name
    if is_valid(target, source):
        log.info("%s: present and valid, skipped", target)
        return target
    if target.exists():
        log.warning("%s: damaged (checksum mismatch), fetching it again", target)
    url = source.url(config.base_url)
    part = target.with_name(target.name + ".part")
    last_error: BaseException | None = None
    for attempt in range(config.retries + 1):
        if attempt:
            time.sleep(config.backoff * 2 ** (attempt - 1))
        try:
            digest = _fetch_once(url, part, config.timeout, source.local_name)
        except urllib.error.HTTPError as err:
            last_error = err
            if err.code == 404:
                break
            continue
        except (urllib.error.URLError, OSError, DownloadError) as err:
            if _is_offline(err):
                part.unlink(missing_ok=True)
                raise OfflineError(
                    f"cannot reach {url} ({getattr(err, 'reason', err)}): this machine looks "
                    "offline. Copy the original files onto it and point at them with "
                    "raw_dir=/path/to/files (names <single|multiple>_<file name>), "
                    "then run `python -m data_prep prepare raw_dir=...`."
                ) from err
            last_error = err
            continue
        if source.sha256 is None:
            ok = gzip_is_complete(part)
            log.info("%s has no published checksum; its sha256 is %s", source.name, digest)
        else:
            ok = digest == source.sha256
        if ok:
            part.replace(target)
            return target
        last_error = DownloadError(
            f"{url}: sha256 {digest} does not match the published {source.sha256}"
        )
    part.unlink(missing_ok=True)
    raise DownloadError(
        f"{source.local_name}: download failed after {config.retries + 1} attempts: "
        f"{last_error}. Nothing was kept under {target}; run the download again, or place "
        f"a verified copy there."
    )


def download(config: PrepConfig, sources: Iterable[SourceFile] = SOURCE_FILES) -> list[Path]:
    """Fetch every original file into config.raw_path; returns the paths of valid files."""
    raw_dir = config.raw_path
    sources = list(sources)
    paths, failures = [], []
    for source in tqdm(sources, desc="download", unit="file", disable=None):
        try:
            paths.append(download_file(source, raw_dir, config))
        except OfflineError:
            raise
        except DownloadError as err:
            failures.append(str(err))
    if failures:
        raise DownloadError(
            f"{len(failures)} of {len(sources)} files failed:\n" + "\n".join(failures)
        )
    return paths
