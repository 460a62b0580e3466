"""Output files written whole or not at all (``--json``, checkpoints).

A file is written to a temporary file of its own, unique name beside it and
renamed over it, so that a failure (a full disk, Ctrl-C) leaves the old file as
it was and never half a new one, and no other file is touched. A symlink is
followed (its target is replaced, the link stays); a path that is not a regular
file (``/dev/stdout``, a FIFO, a terminal) is written in place, as renaming
over it would replace the device itself.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["check_writable", "write_whole"]


def write_whole(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Replace the file at ``path`` with what ``write`` writes to the file
    object it is given. Raises OSError (the old file kept)."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if path.exists() and not path.is_file():
        with path.open("wb") as f:
            write(f)
        return
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode(target)
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(name, mode)
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def check_writable(path: Path) -> None:
    """Raise OSError now where ``path`` could not be written later: a
    directory, or a directory that does not exist or takes no new file
    (nothing is left behind)."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if path.exists() and not path.is_file():
        return  # a device or a FIFO: opened when written
    target = Path(os.path.realpath(path))
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    os.close(fd)
    os.unlink(name)


def _mode(target: Path) -> int:
    """The new file's permissions: the old file's, else what the umask gives
    a new file (``mkstemp`` makes it private)."""
    with contextlib.suppress(FileNotFoundError):
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
