"""The root ``probegen`` command and the one place user errors become exit codes.

Sub-commands live in sibling modules, each a thin layer over the Python API; they raise
:class:`probegen.errors.ProbegenError` for anything the user can fix, and :func:`main`
prints it as one line on stderr and exits 2; so does an ``OSError`` about a path (a
read-only or missing directory, a file where a directory should be). No traceback
reaches a user for their own mistake; an unexpected exception is a bug and keeps its
traceback.

Exit codes: 0 success; 1 a run that ended but failed (calls still failing after retries,
nothing scorable; its outputs and the failure are recorded); 2 a user error (one line,
nothing written); 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from rich.console import Console

from probegen.errors import ProbegenError
from probegen.redaction import redact_text

__all__ = ["EXIT_RUN_FAILED", "EXIT_USER_ERROR", "app", "console", "err_console", "main"]

app = typer.Typer(
    name="probegen",
    help="Find where AI models treat people differently: evolve counterfactual bias probes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# No emoji codes: model specs and user text hold colons (``openai:x:...`` is not ❌).
console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

EXIT_USER_ERROR = 2
EXIT_RUN_FAILED = 1
"""A run that ended but failed: its calls kept failing, or nothing could be scored."""


def _fail(message: str) -> int:
    # An error may quote what a server answered: mask every secret probegen was given.
    err_console.print(f"error: {redact_text(message)}", markup=False)
    return EXIT_USER_ERROR


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI and map errors to exit codes."""
    command = typer.main.get_command(app)
    try:
        result = command.main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name="probegen",
            standalone_mode=False,
        )
    except ProbegenError as error:
        sys.exit(_fail(str(error)))
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted", markup=False)
        sys.exit(130)
    except OSError as error:
        # A file the user pointed at cannot be read or written (read-only directory, a
        # file where a directory should be, a full disk): theirs to fix, so one line. An
        # OSError without a path is not about their files and keeps its traceback.
        if error.filename is None:
            raise
        sys.exit(_fail(_os_error_line(error)))
    except Exception as error:
        if not _is_cli_error(error):
            raise
        ctx = getattr(error, "ctx", None)
        if type(error).__name__ == "NoArgsIsHelpError" and ctx is not None:
            console.print(ctx.get_help(), markup=False)  # bare `probegen`: show the help
            sys.exit(0)
        sys.exit(_fail(_cli_error_line(error)))
    sys.exit(result if isinstance(result, int) else 0)


def _is_cli_error(error: Exception) -> bool:
    # Typer >= 0.29 vendors its own click, whose exceptions do not subclass the `click`
    # package's; recognise a usage error by its interface rather than by its class.
    return callable(getattr(error, "format_message", None)) and hasattr(error, "exit_code")


def _cli_error_line(error: Exception) -> str:
    message = " ".join(str(error.format_message()).split())  # type: ignore[attr-defined]
    ctx = getattr(error, "ctx", None)
    path = getattr(ctx, "command_path", None)
    return f"{message} (see `{path} --help`)" if path else message


def _os_error_line(error: OSError) -> str:
    path = str(error.filename)
    if error.filename2 is not None:
        path += f" -> {error.filename2}"
    reason = error.strerror or type(error).__name__
    return f"{path}: {reason} (fix: check the path and its permissions)"
