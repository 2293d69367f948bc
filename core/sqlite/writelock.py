"""One writer at a time on an SQLite file, queued by the kernel rather than by SQLite's busy handler.

SQLite lets one transaction write at a time. A second writer waits in SQLite's busy handler, which
sleeps between tries (1, 2, 5, 10 ... up to 100 ms), so the lock often lies free while every waiter
sleeps, and the writer that has just committed takes it again first: long tails under concurrent
writes. An exclusive ``flock()`` on a file beside the database (``<database>.writelock``), taken
before a write transaction begins and let go when it ends, queues the writers of every process
and thread in the kernel, which wakes a waiter the moment the lock is let go. A process that dies
lets go of it with its descriptors.

SQLite's own lock and busy timeout stay beneath it, for writers that don't take this lock (the
``sqlite3`` shell, another program); every connection of this backend does (``base.py``).
"""

import fcntl
import os
import threading


class WriteLockTimeout(Exception):
    """The lock was not free within the timeout."""


class WriteLock:
    """The exclusive lock of one connection on the lock file of its database.

    Each acquisition opens the file anew: ``flock()`` locks belong to an open file, so two
    connections of one process (two threads) exclude each other as two processes do.
    """

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def acquire(self):
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if self.timeout <= 0:
                os.close(fd)
                raise WriteLockTimeout("the database's write lock is held by another writer") from None
            _wait(fd, self.timeout)  # owns fd from here on: closes it if it gives up
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self):
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # the last descriptor of the open file: the lock goes with it


def _wait(fd, timeout):
    """Block in ``flock()`` until the lock is ours, at most ``timeout`` seconds.

    The kernel cannot bound a blocking ``flock()``, so a helper thread blocks in it while the
    caller waits for the helper, as long as ``timeout``. A helper whose caller has given up lets
    the lock go as soon as it gets it. Only a contended acquisition pays for the thread.
    """
    taken = threading.Event()
    guard = threading.Lock()
    state = {"abandoned": False, "error": None}

    def take():
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            state["error"] = exc
        with guard:
            if state["abandoned"]:
                os.close(fd)
            else:
                taken.set()

    threading.Thread(target=take, name="sqlite-writelock", daemon=True).start()
    if not taken.wait(timeout):
        with guard:
            if not taken.is_set():
                state["abandoned"] = True
                raise WriteLockTimeout(f"the database's write lock was held by another writer for {timeout} s")
    if state["error"] is not None:
        os.close(fd)
        raise state["error"]
