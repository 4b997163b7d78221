"""Atomic file writes: every output is written to a temporary file beside its target and renamed into place, so
a killed job never leaves a half-written file that a rerun would take as done."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def replacing(path: str | os.PathLike):
    """Yield a temporary path in the target's directory; on success rename it to ``path``, else remove it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the output directory '{path.parent}': {err.strerror}") from err
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get a normal mode
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise OSError(err.errno, f"cannot write '{path}': {os.strerror(err.errno)}") from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
