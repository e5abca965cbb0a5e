"""One line and an exit code for every error a user can fix, in the training command lines.

A traceback for "the dataset folder is malformed" buries the one sentence that matters; the
library raises typed errors whose text names the input and the fix, and the command lines print
that text alone. Anything else (a bug) still raises with its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import TypeVar

from sam_moelora_ros.cli_types import non_negative_int, positive_int
from sam_moelora_ros.datasets.errors import DatasetError
from sam_moelora_ros.model.errors import CheckpointError, ModelConfigError

from .config import TrainConfigError
from .state import TrainStateError

INPUT_ERRORS: tuple[type[Exception], ...] = (
    TrainConfigError,
    TrainStateError,
    DatasetError,
    CheckpointError,
    ModelConfigError,
)
"""Bad input (config, data, checkpoint): exit code 2, like argparse's usage errors."""

EXIT_INPUT = 2
EXIT_RUN = 1

F = TypeVar("F", bound=Callable[..., int])


def one_line_errors(run_errors: tuple[type[Exception], ...] = ()) -> Callable[[F], F]:
    """Decorate a ``main(argv) -> int``: input errors -> exit 2, ``run_errors`` -> exit 1."""

    def wrap(main: F) -> F:
        @wraps(main)
        def guarded(*args: object, **kwargs: object) -> int:
            try:
                return main(*args, **kwargs)
            except INPUT_ERRORS as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_INPUT
            except run_errors as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_RUN

        return guarded  # type: ignore[return-value]

    return wrap


__all__: Sequence[str] = ("non_negative_int", "one_line_errors", "positive_int")
