"""Atomic file output: write to a temporary file beside the target, then rename.

A crash at any moment leaves either the old file or the new one, never a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from common.errors import UserError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path in the target's folder; on success rename it onto ``target``.

    The temporary name keeps the target's suffix (numpy and faiss look at suffixes).
    On an exception the temporary file is removed and the target is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    # mkstemp creates 0600 files; give the result the mode an ordinary open() would (0666 less umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def save_figure(figure, target: str | os.PathLike, dpi: int = 100) -> None:
    """Write a matplotlib figure as PNG atomically (tight layout), then close it."""
    import matplotlib.pyplot as plt  # only callers that plot need matplotlib loaded

    figure.tight_layout()
    with atomic_path(target) as tmp:
        figure.savefig(tmp, dpi=dpi, format="png")
    plt.close(figure)


def writable_folder(folder: str | os.PathLike, what: str) -> Path:
    """Create ``folder`` (with its parents) and check that files can be written in it.

    ``what`` names it in the error (e.g. "config.json: key 'output dir'"); raises UserError when
    the folder cannot be created or written (a file in the way, no permission, read-only disk).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what}: {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f"{what}: cannot write to {folder} ({error.strerror or error})") from None
    return folder
