"""The end of a stored run, whatever ends it: one rule for every library call.

A run row that exists must never be left ``running`` by what stopped it, since that is
what a killed run looks like. :func:`recorded_run` wraps the work of ``evolve``,
``evaluate`` and ``ask``: Ctrl-C marks the run ``interrupted`` and raises
:class:`~probegen.errors.RunInterrupted`; any other exception marks it ``failed`` with
the reason and goes on. Finishing a run that ended is the caller's (it knows whether the
run ``finished`` or ``failed``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from probegen.errors import ProbegenError, RunInterrupted
from probegen.store import Store

__all__ = ["recorded_run"]


@contextmanager
def recorded_run(store: Store, run_id: str, interrupted: str | None = None) -> Iterator[None]:
    """Run the body; mark ``run_id`` ``interrupted`` or ``failed`` if it does not end.

    Args:
        store: The run's store.
        run_id: The run.
        interrupted: The message of the :class:`RunInterrupted` raised on Ctrl-C
            (default: how to resume an evolve run).

    Raises:
        RunInterrupted: Ctrl-C (or a ``KeyboardInterrupt`` from a model).
    """
    try:
        yield
    except KeyboardInterrupt:
        store.finish_run(run_id, "interrupted")
        raise RunInterrupted(run_id, interrupted) from None
    except BaseException as error:
        reason = str(error) if isinstance(error, ProbegenError) else repr(error)
        store.finish_run(run_id, "failed", reason=reason)
        raise
