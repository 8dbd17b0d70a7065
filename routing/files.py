"""Small file helpers: a file's hash (the batch engines, the local model's cache), private files
(0600 files in 0700 folders: the outcome log, the spend ledgers, the visitors' calls) and files
replaced whole (the pool and routes files edited from the page)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, read a MiB at a time."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def replace_bytes(path: Path, content: bytes | None) -> None:
    """``path`` now holds ``content`` (None: ``path`` is removed), never half-written: the bytes go to a
    temporary file beside it, are synced, then ``os.replace``d over it."""
    path = Path(path)
    if content is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


FILE_MODE = 0o600
DIR_MODE = 0o700


def _private_dir(folder: Path) -> None:
    """Create ``folder`` (0700) if it is missing; a folder that exists already is left as it is."""
    if folder.is_dir():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=DIR_MODE)
    except FileExistsError:
        return
    try:
        os.chmod(folder, DIR_MODE)  # exactly 0700, whatever the umask
    except OSError:
        pass


def _private_file(path: Path) -> None:
    """Create ``path`` as an empty, 0600 file (an empty file is an empty SQLite database) if missing."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        return
    try:
        os.chmod(path, FILE_MODE)
    except OSError:
        pass


def _tighten(path: Path) -> None:
    """Make an existing log file and its -wal/-shm files 0600 (only files this user owns)."""
    getuid = getattr(os, "getuid", None)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = p.stat()
            if (st.st_mode & 0o777) != FILE_MODE and (getuid is None or st.st_uid == getuid()):
                os.chmod(p, FILE_MODE)
        except OSError:
            continue
