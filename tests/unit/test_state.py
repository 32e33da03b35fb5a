"""The persistent state store."""
import pytest

from controller.state import StateError, StateStore


def test_round_trip_and_missing_file(tmp_path):
    store = StateStore("vlan", tmp_path / "state")
    assert store.load() == {}
    store.save({"0000000000000001": {"3": {"tag": 101}}})
    assert StateStore("vlan", tmp_path / "state").load() == {"0000000000000001": {"3": {"tag": 101}}}
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["vlan.json"]  # no temp files left


def test_corrupt_file_is_a_clear_error(tmp_path):
    (tmp_path / "vlan.json").write_text("{not json")
    with pytest.raises(StateError, match="is corrupt"):
        StateStore("vlan", tmp_path).load()


def test_unwritable_directory_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StateError, match="cannot save state"):
        StateStore("vlan", tmp_path / "file" / "sub").save({})
