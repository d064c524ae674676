"""search/storage.py: experiments on a full disk and at a URI.

The URI cases run against a real S3-compatible server started here on 127.0.0.1 (moto's
`moto_server`, the dev extra `moto[server]`), with a bucket the test makes; the full disk is
a small tmpfs (skipped where this machine does not allow mounting one)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pytest

from search.storage import Location, filesystem, split_experiment_uri
from tests.conftest import REPO
from tests.search.test_resume import kill_session, search_args, signal_when

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "qatune", "AWS_SECRET_ACCESS_KEY": "qatune",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
SEARCH = ["arch=dan", "num_samples=2", "max_concurrent=2", "max_epochs=2", "grace_period=1",
          "max_train_rows=1500", "trial_scheduler=none"]  # fmt: skip


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs: a full disk for real."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if done.returncode:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_write_to_a_full_disk_leaves_the_last_good_file(small_disk, tmp_path):
    """Ray copies its experiment state and the trials' checkpoints into storage_path; a full
    disk once left them half-written, and the resume that followed could not read them."""
    fs, _ = filesystem(str(small_disk))
    state = small_disk / "experiment_state.json"
    with fs.open_output_stream(str(state)) as out:
        out.write(b'{"good": true}')
    too_big = tmp_path / "too_big.json"
    too_big.write_bytes(os.urandom(3 << 20))
    with pytest.raises(OSError, match="No space left on device"):
        pafs.copy_files(str(too_big), str(state), destination_filesystem=fs)
    assert state.read_bytes() == b'{"good": true}'
    assert sorted(os.listdir(small_disk)) == ["experiment_state.json"], "a temporary file left"


def test_an_experiment_uri_keeps_its_query_and_gives_back_its_parts():
    uri = "s3://bucket/results?endpoint_override=127.0.0.1:9000&scheme=http"
    location = Location(uri, "qatune")
    assert (
        str(location) == "s3://bucket/results/qatune?endpoint_override=127.0.0.1:9000&scheme=http"
    )
    assert location.uri("best_model").startswith("s3://bucket/results/qatune/best_model?")
    assert split_experiment_uri(str(location)) == (uri, "qatune")
    assert location.local != Location(uri.replace("9000", "9001"), "qatune").local


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_storage(tmp_path_factory):
    """moto_server on 127.0.0.1 and a bucket: (storage_path URI, its filesystem, env)."""
    if shutil.which("moto_server") is None:
        pytest.skip("moto_server is not installed (pip install -e '.[dev]')")
    port = free_port()
    env = {**os.environ, **CREDENTIALS}
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115
    command = ["moto_server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http",
                           access_key="qatune", secret_key="qatune", region="us-east-1",
                           allow_bucket_creation=True)  # fmt: skip
    deadline = time.time() + 30
    while True:
        try:
            fs.create_dir("qatune-test")
            break
        except OSError:
            assert time.time() < deadline, "moto_server did not start"
            time.sleep(0.3)
    uri = f"s3://qatune-test/results?endpoint_override=127.0.0.1:{port}&scheme=http"
    yield uri, fs, env
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def generic(relative: str) -> str:
    """A file's path with what differs between two runs of one command named generically:
    trial ids, ensemble members (trial ids), TensorBoard's time-stamped file names."""
    relative = re.sub(r"^dan_[0-9a-f]+/", "dan_<trial>/", relative)
    relative = re.sub(r"^best_ensemble/[0-9a-f]{8}/", "best_ensemble/<member>/", relative)
    return re.sub(r"events\.out\.tfevents\.[\w.-]+$", "events.out.tfevents.<time>", relative)


def bucket_files(fs, prefix: str) -> set[str]:
    """Every file under prefix, named generically."""
    return {
        generic(info.path[len(prefix) + 1 :])
        for info in fs.get_file_info(pafs.FileSelector(prefix, recursive=True))
        if info.type == pafs.FileType.File
    }


def private_ray(env: dict) -> dict:
    """A Ray temp dir of the command's own (short: Ray's socket paths must stay under the
    AF_UNIX limit), apart from the tests' own local Ray in /tmp/ray."""
    return {**env, "RAY_TMPDIR": tempfile.mkdtemp(prefix="qs", dir="/tmp")}


def run_search(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """The command in a session of its own: nothing it or its Ray does reaches pytest."""
    return subprocess.run(args, cwd=cwd, env=private_ray(env), capture_output=True, text=True,
                          timeout=600, start_new_session=True)  # fmt: skip


@pytest.mark.e2e
def test_a_search_on_s3_ends_with_its_outputs_in_the_bucket_and_predicts_from_there(
    prepared_sample, tmp_path, s3_storage
):
    uri, fs, env = s3_storage
    args = search_args(prepared_sample, tmp_path, "cloud", *SEARCH)
    args = [a for a in args if not a.startswith("storage_path=")] + [f"storage_path={uri}"]
    env = {**env, "QATUNE_CACHE": str(tmp_path / "cache")}
    done = run_search(args, env, cwd=tmp_path)  # a `s3:` directory would appear here
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("test accuracy: ")
    assert not (tmp_path / "s3:").exists() and not list(tmp_path.glob("s3*"))
    files = bucket_files(fs, "qatune-test/results/cloud")
    for output in ("qatune_config.json", ".qatune_experiment.json", "tuner.pkl", "report.md",
                   "leaderboard.md", "trials.csv", "final.csv", "best_model/model.pt",
                   "best_ensemble/ensemble.json", "dan_<trial>/progress.csv",
                   "dan_<trial>/best_model/model.pt"):  # fmt: skip
        assert output in files, f"{output} is not in the bucket"
    assert "PARTIAL" not in files
    assert not [f for f in files if "/checkpoint_" in f], "resumable states left after the end"
    with fs.open_input_stream("qatune-test/results/cloud/trials.csv") as stream:
        trials = pd.read_csv(stream)
    assert len(trials) == 2 and (trials["status"] == "ok").all()

    model = Location(uri, "cloud").uri("best_model")
    predicted = subprocess.run([sys.executable, "-m", "search.predict", f"model={model}",
                                "does this case fit the galaxy s9?"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    lines = [line.split(maxsplit=1) for line in predicted.stdout.strip().splitlines()[-3:]]
    probabilities = [float(p) for p, _label in lines]  # "0.9400  cell phones and accessories"
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001


@pytest.mark.e2e
@pytest.mark.slow
def test_a_search_on_s3_writes_what_a_local_one_writes_and_resumes_from_the_uri(
    prepared_sample, tmp_path, s3_storage
):
    """Stopped by SIGTERM once a trial has reported, resumed with resume=<uri>: complete, and
    the same files as the same command with a local storage_path."""
    uri, fs, env = s3_storage
    env = {**env, "QATUNE_CACHE": str(tmp_path / "cache")}
    keys = [*SEARCH, "num_samples=3", "max_concurrent=1", "max_epochs=3", "baseline=false"]
    local = run_search(search_args(prepared_sample, tmp_path / "local", "same", *keys), env, REPO)
    assert local.returncode == 0, local.stderr[-3000:]

    args = search_args(prepared_sample, tmp_path, "same", *keys)
    args = [a for a in args if not a.startswith("storage_path=")] + [f"storage_path={uri}"]
    log = tmp_path / "driver.log"
    with open(log, "w") as out:  # the console's lines (stdout) and the stop's (stderr)
        driver = subprocess.Popen(args, cwd=REPO, env=private_ray(env), start_new_session=True,
                                  stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        code = signal_when(driver, lambda: "trial 1/3 ended" in log.read_text(), [signal.SIGTERM],
                           log)  # fmt: skip
    finally:
        kill_session(driver.pid)
    assert code == 128 + signal.SIGTERM, log.read_text()[-3000:]
    experiment = str(Location(uri, "same"))
    assert log.read_text().strip().splitlines()[-1] == (
        f"resume: python -m search.run 'resume={experiment}'"
    )
    assert "PARTIAL" in bucket_files(fs, "qatune-test/results/same")

    resumed = run_search([sys.executable, "-m", "search.run", f"resume={experiment}",
                          "ray_cpus=2"], env, REPO)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    in_bucket = bucket_files(fs, "qatune-test/results/same")
    local_dir = tmp_path / "local" / "same"
    on_disk = {generic(str(p.relative_to(local_dir))) for p in local_dir.rglob("*") if p.is_file()}
    ray_state = ("experiment_state-", "search_gen_state-", "searcher-state-", "callback-states-")
    differ = {f for f in in_bucket ^ on_disk if not f.startswith(ray_state)}
    assert differ <= {".qatune.lock"}, sorted(differ)
    with fs.open_input_stream("qatune-test/results/same/trials.csv") as stream:
        assert len(pd.read_csv(stream)) == 3


@pytest.mark.e2e
@pytest.mark.slow
def test_a_full_disk_stops_the_search_in_one_line_and_it_resumes(prepared_sample, tmp_path):
    """Once 710 lines and 16 tracebacks, then a resume that could not read the half-written
    state and looped. Now: one line naming the directory, then a resume that completes once
    the disk has room again."""
    fault = "full"
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(disk)]
    if subprocess.run(mount).returncode:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        keys = ["num_samples=4", "max_epochs=3", "baseline=false", "max_train_rows=3000"]
        args = search_args(prepared_sample, disk, "faulty", *SEARCH, *keys)
        env = private_ray(dict(os.environ))
        log = tmp_path / "driver.log"
        driver = subprocess.Popen(args, cwd=REPO, env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=open(log, "w"))  # fmt: skip
        try:
            code = driver.wait(timeout=600)
        finally:
            kill_session(driver.pid)
        text = log.read_text()
        assert code == 1, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        last = text.strip().splitlines()[-1]
        assert last.startswith("error: search stopped: ") and f"is {fault} (no space" in last
        assert last.endswith(f"Resume: python -m search.run resume={disk / 'faulty'}")

        subprocess.run(["mount", "-o", "remount,size=600m", str(disk)], check=True)
        resumed = run_search([sys.executable, "-m", "search.run", f"resume={disk / 'faulty'}",
                              "ray_cpus=2"], env, REPO)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        trials = pd.read_csv(disk / "faulty" / "trials.csv")
        assert len(trials) == 4 and (trials["status"] == "ok").all()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_read_only_experiment_directory_is_named_so(tmp_path):
    """What stops a search whose directory was made read-only under it (search/interrupt.py
    StorageWatch). A read-only remount of a directory Ray has files open in is refused by the
    kernel (EBUSY), so this case is checked on a tmpfs mounted read-only."""
    disk = tmp_path / "ro"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(disk)]).returncode:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        location = Location(str(tmp_path), "ro")
        assert location.unwritable() == "read-only"
        (tmp_path / "rw").mkdir()
        assert Location(str(tmp_path), "rw").unwritable() is None
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
