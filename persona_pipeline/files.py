"""Files we write (reports, Explore, exports, CSV destinations, rejects) replace the old one whole or not at all.

Each is written to a temporary file beside its target, flushed to disk, then renamed over it: a full disk or a
killed process leaves the previous file as it was. What cannot be written is one clear PersonaPipelineError
naming the path and the fix. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from persona_pipeline.errors import PersonaPipelineError

PARTIAL = ".partial"


class OutputError(PersonaPipelineError):
    """A file that cannot be written where asked; nothing was replaced."""


def _refuse(path: Path, exc: OSError) -> OutputError:
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EEXIST: "a part of the path is a file, not a folder",
        errno.EISDIR: "it is a folder",
        errno.ENAMETOOLONG: "the name is too long",
    }.get(exc.errno, exc.strerror or str(exc))
    return OutputError(
        f"cannot write {path}: {reason}; nothing was replaced. Choose another path or fix that"
    )


def _target(path: str | Path) -> Path:
    target = Path(path).expanduser()
    if target.exists() and not target.is_file():
        kind = "a folder" if target.is_dir() else "not a regular file"
        raise OutputError(f"cannot write {target}: it is {kind}; give the path of a file to write")
    return target


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary handle whose bytes become `path` only when the block ends without error."""
    target = _target(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}{PARTIAL}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_partials(target.parent)
        handle = temporary.open("wb")
    except OSError as exc:
        raise _refuse(target, exc) from exc
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise _refuse(target, exc) from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Replace `path` with `text` (UTF-8) atomically; returns the path written."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically; returns the path written."""
    target = _target(path)
    with atomic_output(target) as handle:
        handle.write(data)
    return target


def clean_partials(folder: Path) -> list[Path]:
    """Remove temporary files that writers killed mid-write left in `folder` (their target was never replaced).

    A temporary file names its writer's pid: one whose writer is still running is left alone.
    """
    if not folder.is_dir():
        return []
    left = []
    for path in folder.glob(f".*{PARTIAL}"):
        pid = path.name.removesuffix(PARTIAL).rsplit(".", 1)[-1]
        if path.is_file() and pid.isdigit() and not _running(int(pid)):
            path.unlink(missing_ok=True)
            left.append(path)
    return left


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
