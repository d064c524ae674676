"""A local search's Ray: reachable from this machine alone, its token readable by its user
alone (search/cluster.py local_only)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e  # starts a Ray of its own in a subprocess

LISTENING = r"""
import json, psutil, ray
from search.cluster import connect
connect("", 1)
ray.get(ray.remote(lambda: 1).remote())  # a worker up, listening too
session = ray._private.worker._global_node.get_session_dir_path()
pids = {p.pid for p in psutil.Process().children(recursive=True)}
pids |= {p.pid for p in psutil.process_iter() if session in " ".join(p.cmdline() or [])}
addresses = set()
for pid in pids:
    try:
        sockets = psutil.Process(pid).net_connections(kind="inet")
    except psutil.Error:
        continue
    addresses |= {s.laddr.ip for s in sockets if s.status == psutil.CONN_LISTEN}
print(json.dumps(sorted(addresses)))
ray.shutdown()
"""


def test_a_local_ray_listens_on_loopback_alone_with_a_private_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["HOME"] = str(tmp_path)  # Ray's token goes to $HOME/.ray/auth_token
    run = subprocess.run([sys.executable, "-c", LISTENING], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=180)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    addresses = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(addresses) >= 1
    assert all(a in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for a in addresses), addresses
    token = tmp_path / ".ray" / "auth_token"
    assert token.is_file() and stat.S_IMODE(token.stat().st_mode) == 0o600
