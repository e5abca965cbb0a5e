"""argparse value types shared by the package's command lines (replay, demo, training).

argparse turns the ``ArgumentTypeError`` into one usage line and exit code 2, which is the
promise every command line of the package makes for a bad argument.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type accepting integers ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


positive_int = int_at_least(1)
"""An integer >= 1 (frames, batch sizes, steps)."""

non_negative_int = int_at_least(0)
"""An integer >= 0 (0 meaning "all" or "none", as the option says)."""
