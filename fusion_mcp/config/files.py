"""Reading a configuration file that anyone could have dropped in a folder: a regular file only,
of a bounded size, so that a FIFO, a device (`/dev/zero` linked as `x.toml`) or a huge file costs
one clear error, not a hang or all the memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_CONFIG_BYTES = 1_048_576  # an ensemble file is a few hundred bytes


class UnreadableFile(OSError):
    """Why the file was not read, in words for the user."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def read_config_bytes(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """The file's bytes; UnreadableFile when it is not a regular file or is larger than `limit`.
    Opened non-blocking (opening a FIFO with no writer would wait forever) and checked on the open
    descriptor, so nothing can swap the file between the check and the read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"{_kind(mode)}, not a regular file: only regular .toml files are read")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(65_536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UnreadableFile(f"larger than {limit:,} bytes: not an ensemble file")
        return b"".join(chunks)
    except OSError as exc:
        if isinstance(exc, UnreadableFile):
            raise
        raise UnreadableFile(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
