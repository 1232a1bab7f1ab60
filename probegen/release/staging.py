"""The hidden staging directories a release is written into before it is renamed into place.

``releases/NAME/.X.Y.Z.tmp-PID-HEX`` belongs to the build in process ``PID``. A build that
fails cleans up after itself, but one killed with SIGKILL (or by a power cut) cannot, so
every build first removes the staging directories of NAME whose owner is gone, and
``release verify`` lists the ones it finds. The owner counts as gone when no process has
that PID, when the process with that PID started after the directory was made (the PID
was reused), or when the name carries no PID at all (probegen 0.1 wrote ``.X.Y.Z.tmp-HEX``).
A build running on another machine over a shared file system is not seen; building one
NAME from two machines at once is not supported.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StagingDir", "new_staging_dir", "remove_stale", "staging_dirs"]

_STAGING = re.compile(r"\.(?P<version>.+)\.tmp-(?:(?P<pid>[0-9]+)-)?[0-9a-f]+")
# A directory is made within the same second as its owner's start at the earliest; the
# kernel's start time has clock-tick resolution and the boot time whole seconds.
_CLOCK_SLACK_S = 2.0


@dataclass(frozen=True)
class StagingDir:
    """A staging directory found beside a release's versions.

    Attributes:
        path: The directory.
        version: The version it was writing.
        pid: The process that made it (None for the old unnamed format).
        stale: Whether its owner is gone, so nothing will finish or remove it.
    """

    path: Path
    version: str
    pid: int | None
    stale: bool

    def describe(self) -> str:
        """One line for ``release verify``: what the directory is and what to do."""
        if not self.stale:
            return f"{self.path}: a build of {self.version} in progress (process {self.pid})"
        owner = f"process {self.pid} is gone" if self.pid is not None else "no owner recorded"
        return (
            f"{self.path}: left by an interrupted build of {self.version} ({owner}); the "
            f"next `probegen release build` or `release import` of {self.path.parent.name} "
            "removes it"
        )


def new_staging_dir(release_parent: Path, version: str) -> Path:
    """Make and return ``release_parent/.VERSION.tmp-PID-HEX`` for this process."""
    path = release_parent / f".{version}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    path.mkdir(parents=True)
    return path


def staging_dirs(release_parent: Path) -> list[StagingDir]:
    """The staging directories under ``release_parent`` (``releases/NAME``), by name."""
    if not release_parent.is_dir():
        return []
    found = []
    for path in sorted(release_parent.iterdir()):
        match = _STAGING.fullmatch(path.name)
        if match is None or not path.is_dir():
            continue
        pid = int(match["pid"]) if match["pid"] else None
        found.append(StagingDir(path, match["version"], pid, not _owner_alive(path, pid)))
    return found


def remove_stale(release_parent: Path) -> list[Path]:
    """Delete the stale staging directories under ``release_parent``; returns them."""
    removed = []
    for staging in staging_dirs(release_parent):
        if staging.stale:
            shutil.rmtree(staging.path, ignore_errors=True)
            removed.append(staging.path)
    return removed


def _owner_alive(path: Path, pid: int | None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    except OSError:
        return False
    started = _process_start(pid)
    if started is None:
        return True  # no /proc to tell a reused PID from the owner: keep it
    try:
        made = path.stat().st_mtime
    except OSError:
        return False
    return started <= made + _CLOCK_SLACK_S


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from Linux's /proc; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text(encoding="ascii").splitlines()
            if line.startswith("btime ")
        )
        # Field 22 (starttime, in clock ticks since boot); the command name in field 2
        # may contain spaces and parentheses, so count from its closing parenthesis.
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
