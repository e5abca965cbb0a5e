"""Run setup work on a short-lived thread, so the thread that segments holds the only OpenMP pool.

Why: libgomp (torch's OpenMP runtime) keeps one pool of helper threads per thread that starts
parallel work, living as long as that thread, and once a process holds more helpers than it has
CPUs it stops letting idle helpers spin between parallel regions: every op then puts its helpers
to sleep and wakes them through the kernel. The node builds and warms its Segmenter on the
executor thread and segments on its worker thread, which would be two pools; loading, merging and
the CPU warm-up run here instead, and this thread's pool goes when it exits (docs/design.md, "The
Segmenter's measured choices", has the cost of two pools).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch

_T = TypeVar("_T")


def on_passing_thread(work: Callable[[], _T], name: str = "segmenter-setup") -> _T:
    """``work()`` run on a new thread that ends with it; its result, or its exception re-raised.

    Work done here leaves no OpenMP pool behind (module docstring). The caller's grad mode is
    carried over (it is thread-local in torch); the caller waits, so nothing runs concurrently
    with it.
    """
    outcome: dict[str, Any] = {}
    grad = torch.is_grad_enabled()

    def run() -> None:
        try:
            with torch.set_grad_enabled(grad):
                outcome["value"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
