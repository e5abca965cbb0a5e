"""Whether the ROS tests may run here: the decision, apart from how it is acted on (conftest.py).

ROS tests talk DDS, so they run only in a private network namespace whose sole interface is
loopback. Elsewhere a developer's run skips them (with the command that runs them), but a CI run
must not: a CI job that silently skipped every ROS test would pass while testing nothing of the
node, so with ``CI`` set (as every CI service sets it) the tests error instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RUN, SKIP, ERROR = "run", "skip", "error"


def is_ci(environ: Mapping[str, str]) -> bool:
    """``CI`` set to anything but empty, ``0``, ``false`` or ``no`` (any case)."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def verdict(interfaces: Sequence[str], environ: Mapping[str, str]) -> str:
    """:data:`RUN` when only loopback is up; otherwise :data:`ERROR` under CI, else :data:`SKIP`."""
    if list(interfaces) == ["lo"]:
        return RUN
    return ERROR if is_ci(environ) else SKIP
