"""controller/ovsdb.py's Bridge lookups by datapath id, on a fake ovsdbapp API (no OVSDB)."""
import pytest

from controller import ovsdb


class FakeApi:
    """db_find over a list of Bridge rows, as ovsdbapp's command objects answer it."""

    def __init__(self, rows):
        self.rows, self.asked = rows, []

    def db_find(self, table, condition, columns):
        self.asked.append((table, condition, columns))
        column, op, value = condition
        found = [{c: row[c] for c in columns} for row in self.rows
                 if op == "=" and row[column] == value]
        return type("Command", (), {"execute": lambda self, check_error: found})()


def _db(rows):
    db = ovsdb.Ovsdb("tcp:127.0.0.1:1")
    db._api = FakeApi(rows)
    return db


ROWS = [{"name": "s1", "datapath_id": "0000000000000001", "datapath_type": ""},
        {"name": "hv1", "datapath_id": "00000000000000ab", "datapath_type": "netdev"}]


def test_a_bridge_is_found_by_its_datapath_id_as_ovsdb_spells_it():
    db = _db(ROWS)
    assert db.bridge_of(1) == "s1" and db.bridge_of(0xAB) == "hv1"
    assert db._api.asked[0] == ("Bridge", ("datapath_id", "=", "0000000000000001"), ["name"])


def test_the_datapath_type_is_system_when_ovsdb_leaves_it_empty():
    db = _db(ROWS)
    assert db.datapath_type(1) == "system" and db.datapath_type(0xAB) == "netdev"


@pytest.mark.parametrize("lookup", ["bridge_of", "datapath_type"])
def test_no_bridge_with_that_datapath_id_is_a_clear_error(lookup):
    with pytest.raises(ovsdb.OvsdbError,
                       match=r"^no bridge with datapath id 0000000000000002 in OVSDB at "
                             r"tcp:127\.0\.0\.1:1$"):
        getattr(_db(ROWS), lookup)(2)
