"""The package's one exception base: every error class of ``sam_moelora_ros`` (``training``
included) derives from :class:`SamMoeLoraError`, so a caller can catch the package's errors as one
type. No imports: every module can use it.

Each error class keeps its builtin base as well (``class ParameterError(SamMoeLoraError,
ValueError)``), so the ``except ValueError`` clauses written against it keep working.
"""

from __future__ import annotations


class SamMoeLoraError(Exception):
    """Base of every error this package raises on purpose (the message says what to fix)."""
