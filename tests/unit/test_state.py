"""The persistent state store (SQLite, WAL)."""
import sqlite3

import pytest

from controller.state import StateError, StateStore


def test_round_trip_and_nothing_created_by_a_read(tmp_path):
    store = StateStore("vlan", tmp_path / "state")
    assert store.load() == {}
    assert not (tmp_path / "state").exists()  # reading creates nothing
    store.save({"0000000000000001": {"3": {"tag": 101}}})
    store.save({"0000000000000001": {"3": {"tag": 102}}})
    assert StateStore("vlan", tmp_path / "state").load() == {"0000000000000001": {"3": {"tag": 102}}}
    assert StateStore("qos", tmp_path / "state").load() == {}  # one row per app
    db = sqlite3.connect(str(tmp_path / "state" / "state.db"))
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_json_file_from_before_the_database_is_imported_once(tmp_path):
    (tmp_path / "vlan.json").write_text('{"0000000000000001": {"3": {"tag": 7}}}')
    assert StateStore("vlan", tmp_path).load() == {"0000000000000001": {"3": {"tag": 7}}}
    assert not (tmp_path / "vlan.json").exists() and (tmp_path / "vlan.json.imported").exists()
    assert StateStore("vlan", tmp_path).load() == {"0000000000000001": {"3": {"tag": 7}}}


def test_corrupt_state_is_a_clear_error(tmp_path):
    (tmp_path / "vlan.json").write_text("{not json")
    with pytest.raises(StateError, match="is corrupt"):
        StateStore("vlan", tmp_path).load()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "state.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match="state database .* is not a database"):
        StateStore("qos", tmp_path / "other").load()


def test_unwritable_directory_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StateError, match="cannot open state database"):
        StateStore("vlan", tmp_path / "file" / "sub").save({})
