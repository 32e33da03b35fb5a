"""Persistent state: what REST changed survives a controller restart.

One SQLite database, `state.db`, in the state directory (`SDN_STATE_DIR`, default
/var/lib/sdn-ovs-labs), with a row per app holding its JSON document. The database
runs in WAL mode with synchronous=FULL: a save that returned is on disk, and a crash
(kill -9, power loss) mid-save leaves the previous document, never half of one. Each
save is one short transaction, so apps in the same process never block each other
for long. A `<app>.json` file from before the database is imported once.

A document keyed by datapath id (`dpid_keys=True`: vlan, qos, bond) is keyed by ints
in memory and by 16 hex digits on disk, as it always was; `load` takes any spelling
flows/dpid.py parses, so documents written before this conversion load unchanged.
"""
import json
import os
import sqlite3
from pathlib import Path

from flows import dpid

ENV_VAR = "SDN_STATE_DIR"
DEFAULT_DIR = "/var/lib/sdn-ovs-labs"
DB_NAME = "state.db"


class StateError(RuntimeError):
    pass


class StateStore:
    def __init__(self, app: str, directory=None, dpid_keys: bool = False):
        self.app = app
        self.dpid_keys = dpid_keys
        self.directory = Path(directory or os.environ.get(ENV_VAR, DEFAULT_DIR))
        self.path = self.directory / DB_NAME
        self._db = None

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
                db.execute("CREATE TABLE IF NOT EXISTS app_state "
                           "(app TEXT PRIMARY KEY, document TEXT NOT NULL)")
            except (OSError, sqlite3.Error) as err:
                raise StateError(f"cannot open state database {self.path}: "
                                 f"{getattr(err, 'strerror', None) or err}") from None
            self._db = db
        return self._db

    def load(self) -> dict:
        legacy = self.directory / f"{self.app}.json"
        try:
            db = self._connect(create=legacy.exists())
            row = None if db is None else db.execute(
                "SELECT document FROM app_state WHERE app = ?", (self.app,)).fetchone()
        except sqlite3.Error as err:
            raise StateError(f"state database {self.path} is unreadable ({err}); move it "
                             f"away to start from the config file alone") from None
        if row is None and legacy.exists():
            data = self._parse(legacy.read_text(encoding="utf-8"), legacy)
            self.save(data)
            legacy.rename(legacy.with_name(legacy.name + ".imported"))
            return data
        return {} if row is None else self._parse(row[0], self.path)

    def _parse(self, text, where) -> dict:
        try:
            data = json.loads(text)
        except ValueError as err:
            raise StateError(f"state of {self.app} in {where} is corrupt ({err}); move it "
                             f"away to start from the config file alone") from None
        if not isinstance(data, dict):
            raise StateError(f"state of {self.app} in {where} must be a JSON object")
        if self.dpid_keys:
            try:
                return dpid.int_keys(data)
            except dpid.DpidError as err:
                raise StateError(f"state of {self.app} in {where}: {err}") from None
        return data

    def save(self, data: dict) -> None:
        document = json.dumps(dpid.text_keys(data) if self.dpid_keys else data, sort_keys=True)
        db = self._connect(create=True)
        try:
            db.execute("INSERT INTO app_state (app, document) VALUES (?, ?) ON CONFLICT(app) "
                       "DO UPDATE SET document = excluded.document", (self.app, document))
        except sqlite3.Error as err:
            raise StateError(f"cannot save state to {self.path}: {err}") from None
