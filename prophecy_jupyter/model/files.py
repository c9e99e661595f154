"""Atomic file writes: write beside, fsync, rename. A crash leaves the old file or the new one."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})
"""`os.link` failures meaning the file system cannot link, rather than that the name is taken."""


def _write_beside(path: Path, text: str) -> Path:
    """A temporary file beside ``path`` holding ``text``, flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = _write_beside(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_move_text(source: Path, destination: Path, text: str) -> None:
    """Replace ``source`` by a new file ``destination`` holding ``text`` (a rename that also
    changes the content); `FileExistsError`, with nothing changed, if ``destination`` exists.

    The new file appears complete under its name in one step (a hard link of a file written
    beside it, which fails rather than replace an existing file), and only then is ``source``
    removed: a crash leaves the old file, or the new one, or at worst both, never a partial
    file or neither. Where the file system has no hard links, the existence check and the
    rename are two steps, so callers serialise their writes.
    """
    tmp = _write_beside(destination, text)
    try:
        try:
            os.link(tmp, destination)
        except OSError as exc:
            if isinstance(exc, FileExistsError) or exc.errno not in NO_HARD_LINKS:
                raise
            if destination.exists():
                raise FileExistsError(errno.EEXIST, "file exists", str(destination)) from None
            os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
    source.unlink(missing_ok=True)
