"""When the database itself fails: SQLite's errors as `StoreUnavailable`, saying what to do,
and whether the file the store opened is still the one at its path.

`unavailable` names the failures of the database rather than of one append (locked,
read-only, unopenable, a failing or full disk, a damaged file); any other error is left
as it is. `FileIdentity` notices the file removed or replaced under an open store: SQLite
keeps writing to the open file, which nothing can read again once it is unlinked.
"""

from __future__ import annotations

import os
import sqlite3

from sqlalchemy import exc

from session_store.errors import StoreUnavailable, causes

_LOCKED = ("is locked: another connection or process held its write lock for longer than "
           "the busy timeout. Retry later, or end the long transaction that holds it (a slow "
           "writer, a backup, an open sqlite3 shell); open_store(busy_timeout=...) waits "
           "longer")
_MEANINGS = {
    "SQLITE_BUSY": _LOCKED,
    "SQLITE_LOCKED": _LOCKED,
    "SQLITE_READONLY": ("is read-only (the file, its directory or its disk): make the file "
                        "and its directory writable by this process (SQLite writes -wal and "
                        "-shm files beside it), or open a writable copy"),
    "SQLITE_CANTOPEN": ("cannot be opened: its file or directory is missing, read-only or not "
                        "accessible to this process (SQLite creates -wal and -shm files "
                        "beside the database)"),
    "SQLITE_PERM": "is not accessible to this process: check its permissions",
    "SQLITE_IOERR": ("failed a disk read or write: check that the file and its directory "
                     "still exist and the disk is healthy, then open the store again"),
    "SQLITE_FULL": "cannot grow: the disk is full; free some space and retry",
    "SQLITE_CORRUPT": "is damaged: restore it from a backup",
    "SQLITE_NOTADB": "is not a SQLite database: check the path",
}


def unavailable(error: BaseException, where: str, done: str = "nothing was written"
                ) -> StoreUnavailable | None:
    """`error` (sqlite3's, or SQLAlchemy's around it) as the `StoreUnavailable` it means when
    the database failed; None when it is about something else (a constraint, bad SQL)."""
    cause = error.orig if isinstance(error, exc.DBAPIError) else error
    if not isinstance(cause, sqlite3.Error):
        return None
    name = getattr(cause, "sqlite_errorname", "") or ""
    meaning = _MEANINGS.get("_".join(name.split("_")[:2]))  # SQLITE_IOERR_WRITE: SQLITE_IOERR
    if meaning is None:
        return None
    return StoreUnavailable(f"the SQLite database {where} {meaning}; {done} ({cause})")


def server_unavailable(error: BaseException, where: str, done: str = "the store was not opened"
                       ) -> StoreUnavailable | None:
    """`error` as `StoreUnavailable` when a database server refused or could not be reached
    (asyncpg's errors: no such database or role, bad password; a refused connection, a
    timeout); None for anything else."""
    for cause in causes(error):
        text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        if (type(cause).__module__ or "").startswith("asyncpg"):
            return StoreUnavailable(
                f"PostgreSQL at {where} refused: {text}; check the user, password and "
                f"database name (create a database with `createdb`); {done}")
        if isinstance(cause, TimeoutError):
            return StoreUnavailable(f"timed out connecting to {where}: is the server up and "
                                    f"reachable? {done}")
        if isinstance(cause, OSError):
            return StoreUnavailable(
                f"cannot reach the database at {where}: {cause.strerror or text}; is the "
                f"server running, and are the host and port right? {done}")
    return None


class FileIdentity:
    """The device and inode of the database file as the store opened it."""

    def __init__(self, path: str) -> None:
        """Taken once the file is open (`path` as it was opened: absolute, see
        `storage.database`)."""
        self.path = path
        self._identity = self._stat()

    def _stat(self) -> tuple[int, int] | str:
        try:
            found = os.stat(self.path)
        except OSError as error:
            return (f"the SQLite database {self.path} was removed while the store had it open "
                    f"({error.strerror})")
        return found.st_dev, found.st_ino

    def problem(self) -> str | None:
        """Why the file at the path is not the open one any more; None while it is.

        One `stat` call (about a microsecond): cheap enough for every batch of appends.
        """
        found = self._stat()
        if isinstance(self._identity, str) or isinstance(found, str):
            return self._identity if isinstance(self._identity, str) else str(found)
        if found != self._identity:
            return (f"the SQLite database {self.path} was replaced by another file while the "
                    "store had it open")
        return None
