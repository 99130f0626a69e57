"""Files that are either whole or absent, and one writer per output folder.

Every command that writes (preprocess, the adapters, Beam workers, predict)
promises that a kill at any moment, followed by the same command, ends with the
outputs of an uninterrupted run and no temporary file. Three rules give that:

- a file is written under `<path>.tmp` and renamed onto `path` (`os.replace`
  is atomic on one POSIX file system), so a reader never sees half a file
  under a real name; a failed write removes its temporary;
- a unit of work (one input's shard, one input's predict outputs) records its
  completion last, in a file of its own, so anything a kill leaves without that
  record is redone, never taken for finished;
- a command removes the stale temporaries of the outputs it owns before it
  skips or redoes them (`remove_temporaries`): a temporary left by a killed
  run is otherwise never overwritten when its output turns out finished.

Two processes writing the same temporary would interleave, so a command holds
`OutputLock` on its output folder for the whole run; a second one is refused
with the holder's pid and host.

Standard library only: every layer of `data_pipeline` and `affnet.predict` may use it.
"""

import contextlib
import errno
import fcntl
import json
import os
import socket
from typing import Any, Callable, Iterable

TEMPORARY_SUFFIX = ".tmp"
LOCK_NAME = ".affnet.lock"


def temporary_path(path: str) -> str:
    return path + TEMPORARY_SUFFIX


# The disk full, a quota or file-size limit reached, a read-only file system: the run stops, saying which file.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})


class StorageError(OSError):
    """Writing `filename` failed for lack of space or a read-only file system (`STORAGE_ERRNOS`)."""


def named(error: OSError, path: str) -> OSError:
    """`error` as an OSError naming `path` (the output, not its temporary); a `StorageError` for
    `STORAGE_ERRNOS`, so the command lines report it as one line."""
    cls = StorageError if error.errno in STORAGE_ERRNOS else type(error)
    try:
        return cls(error.errno, error.strerror or str(error), path)
    except TypeError:  # An OSError subclass with a constructor of its own.
        return error


def replace_atomically(path: str, write: Callable[[str], None], temporary: str = "") -> None:
    """`write(temporary)` then rename it onto `path`; on any error the temporary is removed,
    and an OSError is raised again naming `path` (`named`).

    `temporary` defaults to `<path>.tmp`; a writer that needs a suffix of its own
    (a container format chosen by extension) passes one under the same name.
    """
    temporary = temporary or temporary_path(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        if isinstance(error, OSError):
            raise named(error, path) from error
        raise


def write_text(path: str, text: str) -> None:
    def write(temporary):
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()  # Errors of a full disk surface here, inside replace_atomically.

    replace_atomically(path, write)


def write_json(path: str, value: Any) -> None:
    """`value` as indented JSON, whole or not at all."""
    write_text(path, json.dumps(value, indent=1))


def remove_temporaries(paths: Iterable[str], suffixes: Iterable[str] = (TEMPORARY_SUFFIX,)) -> None:
    """Remove `<path><suffix>` left by a killed writer of each of `paths` (absent ones are fine)."""
    for path in paths:
        for suffix in suffixes:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)


class LockedError(RuntimeError):
    """Another live process holds the output folder."""


class OutputLock:
    """An exclusive `fcntl.flock` on `<folder>/.affnet.lock`, held for a whole run.

    The file says who holds it ("pid N on HOST: COMMAND") so a refused second run
    names the holder. The kernel drops the lock when its holder dies, so a killed
    run leaves no lock to clear by hand (its file, unlocked, is taken by the next
    run); a run that ends removes the file while still holding the lock, and a run
    that locked a file removed under it meanwhile retries on the new one. flock is
    local to one machine: on NFS or an object store, give each run its own folder.
    """

    def __init__(self, folder: str, command: str = ""):
        self.path = os.path.join(folder, LOCK_NAME)
        self.command = command
        self._fd = None

    def _holder(self) -> str:
        try:
            with open(self.path) as f:
                return f.read().strip() or "another process"
        except OSError:
            return "another process"

    def __enter__(self) -> "OutputLock":
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:  # A read-only output folder shows here first.
                raise named(error, self.path) from error
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise LockedError(f"{os.path.dirname(self.path) or '.'}: in use by {self._holder()} (lock "
                                  f"{self.path}); wait for it to end or use another output folder") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # Removed by the holder that just ended: lock the new file.
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}: {self.command}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
