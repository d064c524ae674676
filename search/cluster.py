"""Joining a Ray cluster, and checks for searches on a multi-node one.

Since Ray 2.7 nothing is synced to the head node: each trial writes its checkpoints and
results to `storage_path` from the node it runs on. A path that only the driver's node can
see would silently lose every result of the other nodes, so it is refused before any trial.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import uuid
from pathlib import Path

import ray
from ray._private import ray_constants
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from data_prep.interrupt import GUARD
from search.config import SearchConfigError
from search.storage import is_uri


@ray.remote(num_cpus=0)
def _sees(path: str, token: str) -> bool:
    marker = Path(path)
    return marker.is_file() and marker.read_text() == token


def check_shared_storage(storage_path: str, timeout_s: float = 120) -> None:
    """Refuse a local storage_path that some alive node of the cluster cannot see."""
    if is_uri(storage_path):  # cloud storage: every node reaches it by URI
        return
    nodes = [n for n in ray.nodes() if n["Alive"]]
    if len(nodes) < 2:
        return
    token = uuid.uuid4().hex
    marker = Path(storage_path) / f".qatune-shared-{token}"
    marker.write_text(token)
    try:
        checks = [
            _sees.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(str(marker), token)
            for n in nodes
        ]
        seen = ray.get(checks, timeout=timeout_s)
    finally:
        marker.unlink(missing_ok=True)
    blind = [n["NodeManagerAddress"] for n, ok in zip(nodes, seen, strict=True) if not ok]
    if blind:
        raise SearchConfigError(
            f"storage_path={storage_path} is not visible from node(s) {', '.join(blind)}: "
            "results and checkpoints of trials there would be lost (Ray does not sync them "
            "to the head). Use a directory every node shares (NFS, EFS)"
        )


CONNECT_TIMEOUT_S = 10.0
GCS_TIMEOUT_S = 20.0  # a Ray head answers in well under a second


def check_gcs_answers(address: str) -> None:
    """Something listens at `address`: refuse it in one line unless it is a Ray cluster's
    GCS. Ray itself retries a port that is not Ray for minutes (a web server, a database),
    and a signal meanwhile waits for it; so Ray's own client is asked from a thread, with a
    bounded wait (left behind if it does not return: the command ends here anyway)."""
    from ray._raylet import GcsClient

    answered: list[object] = []

    def probe() -> None:
        try:
            answered.append(GcsClient(address=address, cluster_id=None).cluster_id)
        except Exception as err:  # noqa: BLE001 - Ray answered, with an error (e.g. its auth)
            answered.append(err)  # ray.init says what is wrong, in its own words

    thread = threading.Thread(target=probe, daemon=True, name="qatune-gcs-probe")
    thread.start()
    thread.join(GCS_TIMEOUT_S)
    if not answered:
        raise SearchConfigError(
            f"address={address}: something listens there but no Ray cluster answered within "
            f"{GCS_TIMEOUT_S:g} s; give the head's GCS address (`ray status` on the head shows "
            "it, default port 6379), or leave address empty for a local Ray"
        )


LOOPBACK = "127.0.0.1"
TOKEN_PATH = Path.home() / ".ray" / "auth_token"  # where Ray reads its default token


def local_only() -> None:
    """A local search's Ray listens on 127.0.0.1 alone, and its token is the user's alone.

    Ray binds its servers (GCS, raylets, workers) to the node's address, and on Linux turns
    "127.0.0.1" into the machine's outward address unless clusters are off, its setting for
    laptops (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read when Ray is imported: so the constant
    too). Off, anyone who reached the machine could join the search's Ray and run code in it.
    Ray writes a missing token with the umask (0644, readable by every user): written here
    first, 0600, and an existing one of the user's made private."""
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"  # the workers, too
    ray_constants.ENABLE_RAY_CLUSTER = False
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return
    if not TOKEN_PATH.exists():
        TOKEN_PATH.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another driver made it meanwhile
            descriptor = os.open(TOKEN_PATH, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(32))
    info = TOKEN_PATH.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        TOKEN_PATH.chmod(0o600)


def connect(address: str, ray_cpus: int) -> None:
    """Start a local Ray (no address) or join a running cluster, with a one-line error when
    none answers: Ray itself retries an unreachable head every few seconds, for minutes.
    Nothing when this process is connected already (a caller's Ray, left to the caller)."""
    if ray.is_initialized():
        return
    if address and address != "auto" and not address.startswith("ray://"):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), CONNECT_TIMEOUT_S).close()
        except (OSError, ValueError) as err:
            raise SearchConfigError(
                f"address={address}: no Ray cluster answers there ({err}); start one with "
                "`ray start --head` (or `ray up cluster.yaml`), or leave address empty for a "
                "local Ray"
            ) from None
    if address and address != "auto" and not address.startswith("ray://"):
        check_gcs_answers(address)
    if not address:
        local_only()
    try:
        # A signal while Ray starts is raised when ray.init has returned (Ray's own SIGTERM
        # handler, installed meanwhile, would exit with status 15 and no word); the caller
        # then stops this Ray (disconnect) and says so in one line.
        with GUARD.deferring(exits=(SystemExit,)), without_rays_sigterm_handler():
            ray.init(
                address=address or None,
                num_cpus=None if address else (ray_cpus or None),
                log_to_driver=False,  # trials print nothing a user needs; errors are reported
                _node_ip_address=None if address else LOOPBACK,
            )
    except (ConnectionError, RuntimeError) as err:
        raise SearchConfigError(
            f"address={address}: could not join a Ray cluster ({str(err).splitlines()[0][:160]})"
            "; start one with `ray start --head`, or leave address empty for a local Ray"
        ) from None


@contextlib.contextmanager
def without_rays_sigterm_handler():
    """ray.init installs a SIGTERM handler that raises SystemExit first thing; a SIGTERM
    then, inside a fork hook of its start-up, was swallowed ("Exception ignored") and the
    search ran on to exit 0. Meanwhile the guard's own handler stays and records it."""
    from ray._private import utils  # Ray 2.60 (pinned): where ray.init sets it

    original = utils.set_sigterm_handler
    utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        utils.set_sigterm_handler = original


def wait_for(ref, doing: str):
    """A Ray task's result, waited for under the signal guard: a signal cancels the task and
    raises Interrupted here, never a KeyboardInterrupt from inside ray.get (a traceback of
    Ray's internals, exit 130 whatever the signal)."""
    with GUARD.graceful(lambda: ray.cancel(ref, force=True)):
        while GUARD.received is None and not ray.wait([ref], timeout=0.5)[0]:
            pass
    GUARD.check(f"while {doing}")
    return ray.get(ref)
