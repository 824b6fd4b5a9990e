"""Writing files so that a crash or Ctrl-C never leaves a half-written one behind.

atomic_write(path, write) calls write(f) on a temporary file in the same folder, flushes
and fsyncs it, then renames it over path (os.replace is atomic on POSIX and Windows): a
reader sees the old file or the new one, never a mix. The folder is fsynced too, so the
rename itself survives a power cut. The new file gets the mode of the file it replaces, or,
for a new file, the umask's (0644 under the usual umask 022), as a plain open() would give.
"""
import contextlib
import os
import secrets
import signal
import stat
import threading
from pathlib import Path


def atomic_write(path, write, mode="wb"):
    """Write path through write(file_object), all or nothing. Returns path as a Path."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    fd, tmp = _create_temporary(folder, path.name)
    try:
        with os.fdopen(fd, mode) as f:
            with contextlib.suppress(FileNotFoundError):  # the rename carries the temporary file's mode
                os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: the old file stays, the temp file goes
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)
    return path


def _create_temporary(folder, name):
    """(fd, path) of a new file beside the target. Opened with mode 0666, so the umask applies
    as for any new file (tempfile.mkstemp would make it 0600 whatever the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {folder / name}")


def _fsync_folder(folder):
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def interrupts_deferred():
    """Hold back Ctrl-C (SIGINT) until the block ends, then raise it: for the few lines that
    must run to the end or not at all, such as copying a new step into the params. Outside
    the main thread signals are not delivered to Python code anyway, so nothing is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
