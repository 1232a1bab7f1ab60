"""Exceptions raised by probegen.

Every error a user can cause (a bad flag, a malformed template, a broken corpus file, a
missing API key) is a :class:`ProbegenError`. Its ``str()`` is one line that names the
offending file, field or flag and says how to fix it; the CLI prints exactly that line
and exits with status 2, never a traceback.

Hierarchy::

    ProbegenError
    ├── UsageError              a flag or argument is invalid
    │   └── ConfigError         a library argument or config field is invalid (names
    │                           the field; the CLI says the flag instead)
    ├── TemplateError           a counterfactual template is malformed or its options do
    │                           not belong to the probe's attribute
    ├── CorpusError             a corpora data file fails validation
    ├── ModelSpecError          a model spec string names no backend or preset
    ├── ModelUnavailableError   a backend's SDK, API key or local weights are missing
    └── StoreError              the run store cannot be opened or migrated

:class:`ModelCallError` is different: it is not the user's fault but a model call that
still failed after every retry. The runner records it as data (a failed query row) and
goes on; it never silently drops the call.

:class:`RunInterrupted` is not an error either: a run stopped by Ctrl-C, marked
``interrupted`` in the store. It is a :class:`KeyboardInterrupt`, so whatever stops on
Ctrl-C still stops.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CorpusError",
    "ModelCallError",
    "ModelSpecError",
    "ModelUnavailableError",
    "ProbegenError",
    "RunInterrupted",
    "StoreError",
    "TemplateError",
    "UsageError",
]


class ProbegenError(Exception):
    """A user-facing error: one line naming what is wrong and the fix.

    A config field or argument named in ``message`` or ``fix`` is written in backticks
    (```base_url```), and nothing else is: the CLI says each such field as its flag.

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


class ConfigError(UsageError):
    """A library argument or config field is invalid.

    Library calls (``probegen.evolve(...)``) speak in their own terms, the field names;
    only the CLI knows its flags, so it reads :attr:`field` and says the flag instead. A
    field named inside ``problem`` or ``fix`` is written in backticks (``lower
    `min_reviews```), so the CLI can say that one's flag too.

    Args:
        field: The config field or argument, e.g. ``generations`` or ``run_id``.
        problem: What is wrong with it (without the field name).
        fix: How to fix it.
        value: The value refused, when the message is clearer with it first:
            ``version 1.0: not X.Y.Z``.
    """

    def __init__(
        self, field: str, problem: str, *, fix: str | None = None, value: object = None
    ) -> None:
        self.field = field
        self.problem = " ".join(problem.split())
        self.value = None if value is None else str(value)
        named = field if self.value is None else f"{field} {self.value}"
        super().__init__(f"{named}: {problem}", fix=fix)


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


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (or a ``KeyboardInterrupt`` from a target); the run is
    marked ``interrupted``. An evolve run continues with ``probegen.resume(run_id)``;
    an eval or ask is run again (its finished calls are answered from the cache).

    Args:
        run_id: The interrupted run.
        message: What to say (default: how to resume an evolve run).
    """

    def __init__(self, run_id: str, message: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(
            message or f"run {run_id} interrupted; continue it with resume({run_id!r})"
        )
