"""Exceptions raised by probegen.

Every error a user can cause (a bad flag, a malformed template, a broken corpus file, a
missing API key) is a :class:`ProbegenError`. Its ``str()`` is one line that names the
offending file, field or flag and says how to fix it; the CLI prints exactly that line
and exits with status 2, never a traceback.

Hierarchy::

    ProbegenError
    ├── UsageError              a flag or argument is invalid
    ├── TemplateError           a counterfactual template is malformed or its options do
    │                           not belong to the probe's attribute
    ├── CorpusError             a corpora data file fails validation
    ├── ModelSpecError          a model spec string names no backend or preset
    ├── ModelUnavailableError   a backend's SDK, API key or local weights are missing
    └── StoreError              the run store cannot be opened or migrated

:class:`ModelCallError` is different: it is not the user's fault but a model call that
still failed after every retry. The runner records it as data (a failed query row) and
goes on; it never silently drops the call.
"""

from __future__ import annotations

__all__ = [
    "CorpusError",
    "ModelCallError",
    "ModelSpecError",
    "ModelUnavailableError",
    "ProbegenError",
    "StoreError",
    "TemplateError",
    "UsageError",
]


class ProbegenError(Exception):
    """A user-facing error: one line naming what is wrong and the fix.

    Args:
        message: What is wrong, naming the file, field or flag.
        fix: How to fix it, appended as ``(fix: ...)``.
    """

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = " ".join(message.split())
        self.fix = " ".join(fix.split()) if fix else None
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.message} (fix: {self.fix})" if self.fix else self.message


class UsageError(ProbegenError):
    """A command-line flag or argument is invalid."""


class TemplateError(ProbegenError):
    """A counterfactual template is malformed or inconsistent with its attribute."""


class CorpusError(ProbegenError):
    """A corpora data file failed validation; the message names file and line or key."""


class ModelSpecError(ProbegenError):
    """A model spec string names no known backend or preset."""


class ModelUnavailableError(ProbegenError):
    """A backend cannot be used here: its SDK, API key or weights are missing."""


class StoreError(ProbegenError):
    """The run store cannot be opened, or its schema is newer than this probegen."""


class ModelCallError(Exception):
    """A model call failed after all retries.

    Args:
        spec: The model spec that was called.
        attempts: How many attempts were made.
        cause: A one-line description of the last error.
    """

    def __init__(self, spec: str, attempts: int, cause: str) -> None:
        self.spec = spec
        self.attempts = attempts
        self.cause = cause
        super().__init__(f"{spec}: failed after {attempts} attempt(s): {cause}")
