"""Persistent state: what REST changed survives a controller restart.

`StateStore` is the interface an app's document is kept behind: `load()` gives the
document and its revision, `save(document, expected_revision)` writes it only if
nobody else wrote since that revision (optimistic concurrency: a cluster of
controllers, issue 12, plugs an etcd backend in here) and `watch(callback)` hears of
other writers' changes.

`SqliteStateStore` is the default backend (`state.backend: sqlite`; `etcd` is
controller/etcd_store.py, for a cluster of controllers): one SQLite database, `state.db`, in the state
directory (`SDN_STATE_DIR`, default /var/lib/sdn-ovs-labs), with a row per app holding
its JSON document and revision. The database runs in WAL mode with synchronous=FULL: a
save that returned is on disk, and a crash (kill -9, power loss) mid-save leaves the
previous document, never half of one. Each save is one short transaction, so apps in
the same process never block each other for long. A `<app>.json` file from before the
database is imported once; a database from before revisions gets the column (its rows
are revision 1).

`DpidKeyed` wraps a store whose document is keyed by datapath id (vlan, qos, bond): ints
in memory, 16 hex digits in the stored document as they always were; a key in any
spelling flows/dpid.py parses loads, so documents written before load unchanged.
"""
import abc
import json
import os
import sqlite3
from pathlib import Path
from typing import Callable, List, Tuple

from flows import dpid

ENV_VAR = "SDN_STATE_DIR"
DEFAULT_DIR = "/var/lib/sdn-ovs-labs"
DB_NAME = "state.db"
NO_REVISION = 0   # the revision of a document never saved


class StateError(RuntimeError):
    pass


class StateConflict(StateError):
    """Another writer saved the document since the revision the caller had."""


def conflict(app: str, current: int, expected: int) -> StateConflict:
    """What a save over a revision that moved is refused with, on every backend."""
    return StateConflict(f"state of {app} was changed by another writer (revision {current}, "
                         f"this controller had {expected}); nothing was saved: reload and "
                         f"try again")


class StateStore(abc.ABC):
    """One app's document, wherever it is kept."""

    def __init__(self, app: str):
        self.app = app
        self._watchers: List[Callable[[dict, int], None]] = []

    @abc.abstractmethod
    def load(self) -> Tuple[dict, int]:
        """(document, revision); ({}, NO_REVISION) when nothing was saved yet."""

    @abc.abstractmethod
    def save(self, document: dict, expected_revision: int) -> int:
        """Write `document` if the stored revision is still `expected_revision` and
        return the new revision; raise StateConflict when it moved meanwhile."""

    def watch(self, callback: Callable[[dict, int], None]) -> None:
        """`callback(document, revision)` runs when another writer changed the
        document (how soon depends on the backend: SqliteStateStore on `poll()`)."""
        self._watchers.append(callback)

    def poll(self) -> bool:
        """Look for another writer's change now (True: there was one, the watchers were
        told). A backend that pushes changes to its watchers has nothing to look for."""
        return False

    def _changed_elsewhere(self, document, revision):
        for callback in list(self._watchers):
            callback(document, revision)


class SqliteStateStore(StateStore):
    """Today's backend. Nothing polls it yet (one controller per state directory: no
    other writer); `poll()` is what a watcher loop calls, and the tests do."""

    def __init__(self, app: str, directory=None):
        super().__init__(app)
        self.directory = Path(directory or os.environ.get(ENV_VAR, DEFAULT_DIR))
        self.path = self.directory / DB_NAME
        self._db = None
        self._seen = None   # the revision this store last loaded or saved

    def _connect(self, create: bool):
        if self._db is None:
            if not create and not self.path.exists():
                return None
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(str(self.path), timeout=10, isolation_level=None,
                                     check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("CREATE TABLE IF NOT EXISTS app_state (app TEXT PRIMARY KEY, "
                           "document TEXT NOT NULL, revision INTEGER NOT NULL DEFAULT 1)")
                columns = [row[1] for row in db.execute("PRAGMA table_info(app_state)")]
                if "revision" not in columns:   # a database from before revisions
                    db.execute("ALTER TABLE app_state ADD COLUMN revision INTEGER NOT NULL "
                               "DEFAULT 1")
            except (OSError, sqlite3.Error) as err:
                raise StateError(f"cannot open state database {self.path}: "
                                 f"{getattr(err, 'strerror', None) or err}") from None
            self._db = db
        return self._db

    def _read(self, create: bool):
        """(document text, revision) of the row, or None."""
        try:
            db = self._connect(create)
            return None if db is None else db.execute(
                "SELECT document, revision FROM app_state WHERE app = ?",
                (self.app,)).fetchone()
        except sqlite3.Error as err:
            raise StateError(f"state database {self.path} is unreadable ({err}); move it "
                             f"away to start from the config file alone") from None

    def load(self) -> Tuple[dict, int]:
        legacy = self.directory / f"{self.app}.json"
        row = self._read(create=legacy.exists())
        if row is None and legacy.exists():
            data = self._parse(legacy.read_text(encoding="utf-8"), legacy)
            revision = self.save(data, NO_REVISION)
            legacy.rename(legacy.with_name(legacy.name + ".imported"))
            return data, revision
        if row is None:
            self._seen = NO_REVISION
            return {}, NO_REVISION
        self._seen = row[1]
        return self._parse(row[0], self.path), row[1]

    def _parse(self, text, where) -> dict:
        try:
            data = json.loads(text)
        except ValueError as err:
            raise StateError(f"state of {self.app} in {where} is corrupt ({err}); move it "
                             f"away to start from the config file alone") from None
        if not isinstance(data, dict):
            raise StateError(f"state of {self.app} in {where} must be a JSON object")
        return data

    def save(self, document: dict, expected_revision: int) -> int:
        text = json.dumps(document, sort_keys=True)
        db = self._connect(create=True)
        try:
            db.execute("BEGIN IMMEDIATE")   # the check and the write as one
            try:
                row = db.execute("SELECT revision FROM app_state WHERE app = ?",
                                 (self.app,)).fetchone()
                current = NO_REVISION if row is None else row[0]
                if current != expected_revision:
                    raise conflict(self.app, current, expected_revision)
                db.execute("INSERT INTO app_state (app, document, revision) VALUES (?, ?, ?) "
                           "ON CONFLICT(app) DO UPDATE SET document = excluded.document, "
                           "revision = excluded.revision", (self.app, text, current + 1))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            raise StateError(f"cannot save state to {self.path}: {err}") from None
        self._seen = current + 1
        return current + 1

    def poll(self) -> bool:
        """Tell the watchers when the stored revision is not the one this store last
        loaded or saved (another writer's change). True when it was."""
        row = self._read(create=False)
        revision = NO_REVISION if row is None else row[1]
        if self._seen is None or revision == self._seen:
            self._seen = revision
            return False
        self._seen = revision
        self._changed_elsewhere({} if row is None else self._parse(row[0], self.path), revision)
        return True


class DpidKeyed(StateStore):
    """`inner`'s document with its top-level keys as datapath ids (ints) in memory."""

    def __init__(self, inner: StateStore):
        super().__init__(inner.app)
        self.inner = inner
        inner.watch(lambda document, revision: self._changed_elsewhere(
            self._ints(document), revision))

    def _ints(self, document: dict) -> dict:
        try:
            return dpid.int_keys(document)
        except dpid.DpidError as err:
            raise StateError(f"state of {self.app}: {err}") from None

    def load(self) -> Tuple[dict, int]:
        document, revision = self.inner.load()
        return self._ints(document), revision

    def save(self, document: dict, expected_revision: int) -> int:
        return self.inner.save(dpid.text_keys(document), expected_revision)

    def poll(self) -> bool:
        return self.inner.poll()
