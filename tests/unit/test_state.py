"""The persistent state store (SQLite, WAL): documents with revisions, optimistic
concurrency, and what earlier versions left on disk."""
import json
import sqlite3

import pytest

from controller.state import NO_REVISION, SqliteStateStore, StateConflict, StateError

DOC = {"0000000000000001": {"3": {"tag": 101}}}


def test_round_trip_and_nothing_created_by_a_read(tmp_path):
    store = SqliteStateStore("vlan", tmp_path / "state")
    assert store.load() == ({}, NO_REVISION)
    assert not (tmp_path / "state").exists()  # reading creates nothing
    first = store.save(DOC, NO_REVISION)
    second = store.save({"0000000000000001": {"3": {"tag": 102}}}, first)
    assert second == first + 1
    assert SqliteStateStore("vlan", tmp_path / "state").load() == (
        {"0000000000000001": {"3": {"tag": 102}}}, second)
    assert SqliteStateStore("qos", tmp_path / "state").load() == ({}, NO_REVISION)  # per app
    db = sqlite3.connect(str(tmp_path / "state" / "state.db"))
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_save_over_a_revision_that_moved_is_refused_and_changes_nothing(tmp_path):
    ours, theirs = SqliteStateStore("lb", tmp_path), SqliteStateStore("lb", tmp_path)
    _, revision = ours.load()
    _, same = theirs.load()
    theirs_now = theirs.save({"vips": {"1": None}}, same)           # another writer first
    with pytest.raises(StateConflict, match="changed by another writer .*revision 1, this "
                                            "controller had 0.*nothing was saved"):
        ours.save({"vips": {"2": None}}, revision)
    assert SqliteStateStore("lb", tmp_path).load() == ({"vips": {"1": None}}, theirs_now)
    assert ours.save({"vips": {"2": None}}, theirs_now) == theirs_now + 1   # after a reload
    with pytest.raises(StateConflict):
        ours.save({}, NO_REVISION)      # "nothing saved yet" is a revision like any other


def test_watchers_hear_of_other_writers_not_of_their_own_saves(tmp_path):
    ours, theirs = SqliteStateStore("qos", tmp_path), SqliteStateStore("qos", tmp_path)
    heard = []
    ours.watch(lambda document, revision: heard.append((document, revision)))
    _, revision = ours.load()
    revision = ours.save(DOC, revision)
    assert not ours.poll() and heard == []
    _, seen = theirs.load()
    changed = theirs.save({"other": {}}, seen)
    assert ours.poll() and heard == [({"other": {}}, changed)]
    assert not ours.poll() and len(heard) == 1      # told once
    assert ours.save(DOC, changed) == changed + 1   # and it can write over what it heard


def test_a_json_file_from_before_the_database_is_imported_once(tmp_path):
    (tmp_path / "vlan.json").write_text(json.dumps(DOC))
    document, revision = SqliteStateStore("vlan", tmp_path).load()
    assert document == DOC and revision > NO_REVISION
    assert not (tmp_path / "vlan.json").exists() and (tmp_path / "vlan.json.imported").exists()
    assert SqliteStateStore("vlan", tmp_path).load() == (DOC, revision)


def test_a_database_from_before_revisions_is_read_and_written(tmp_path):
    db = sqlite3.connect(str(tmp_path / "state.db"))
    db.execute("CREATE TABLE app_state (app TEXT PRIMARY KEY, document TEXT NOT NULL)")
    db.execute("INSERT INTO app_state VALUES ('vlan', ?)", (json.dumps(DOC),))
    db.commit()
    db.close()
    store = SqliteStateStore("vlan", tmp_path)
    document, revision = store.load()
    assert document == DOC and revision == 1
    assert store.save({}, revision) == 2
    assert SqliteStateStore("vlan", tmp_path).load() == ({}, 2)


def test_corrupt_state_is_a_clear_error(tmp_path):
    (tmp_path / "vlan.json").write_text("{not json")
    with pytest.raises(StateError, match="is corrupt"):
        SqliteStateStore("vlan", tmp_path).load()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "state.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match="state database .* is not a database"):
        SqliteStateStore("qos", tmp_path / "other").load()


def test_unwritable_directory_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StateError, match="cannot open state database"):
        SqliteStateStore("vlan", tmp_path / "file" / "sub").save({}, NO_REVISION)
