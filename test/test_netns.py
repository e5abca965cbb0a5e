"""The private network namespace of ``make pytest``/``make demo-live`` and ``bench/run.py`` works
for a developer who is not root: ``unshare -rn`` there (a plain ``unshare -n`` is "Operation not
permitted" without root), ``unshare -n`` as root."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
"""Run as an ordinary user (root only can switch; a non-root runner already is one)."""


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to run as a non-root user")
    return NOBODY


def _make_commands(target: str, prefix: list[str]) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        [*prefix, "make", "-n", "-s", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def _bench_run():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("target", ["pytest", "demo-live"])
def test_the_makefile_enters_the_namespace_with_the_flags_of_its_user(target):
    user = _make_commands(target, _as_user())
    assert "unshare -rn sh -c 'ip link set lo up" in user
    if os.geteuid() == 0:
        assert "unshare -n sh -c 'ip link set lo up" in _make_commands(target, [])


def test_bench_uses_the_same_flags():
    run = _bench_run()
    assert run.netns_prefix(0)[:2] == ["unshare", "-n"]
    assert run.netns_prefix(1000)[:2] == ["unshare", "-rn"]


def test_a_non_root_user_gets_a_loopback_only_namespace():
    """Really run it as an ordinary user: the namespace has loopback, up, and nothing else."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare and ip (util-linux, iproute2) are needed")
    prefix = _bench_run().netns_prefix(65534 if os.geteuid() == 0 else os.geteuid())
    done = subprocess.run(
        [*_as_user(), *prefix, "ip", "-o", "link"], capture_output=True, text=True, timeout=30
    )
    if done.returncode and "Operation not permitted" in done.stderr and os.geteuid() != 0:
        pytest.skip(f"this machine allows no user namespaces: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    links = [line.split(":")[1].strip() for line in done.stdout.splitlines()]
    assert links == ["lo"] and "UP" in done.stdout
