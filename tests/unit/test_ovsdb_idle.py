"""What the controller asks of OVSDB while nothing happens (issue 19): its IDL leaves
out what ovs-vswitchd rewrites every few seconds for every interface, and green threads
that need OVSDB at once share one connect."""
import pytest
from ryu.lib import hub

from controller import ovsdb


def column(ref=None, value_ref=None):
    kind = {"key": {"type": "uuid", "refTable": ref} if ref else "string"}
    if value_ref:
        kind["value"] = {"type": "uuid", "refTable": value_ref}
    return {"type": kind}


def schema():
    tables = {name: {"columns": {"name": column()}} for name in ovsdb.TABLES}
    tables["Interface"]["columns"].update(statistics=column(), link_state=column(),
                                          ofport=column(), options=column())
    tables["Bridge"]["columns"].update(ports=column("Port"), controller=column("Controller"),
                                       flow_tables=column(value_ref="Flow_Table"),
                                       mirrors=column("Mirror"), status=column())
    tables["Controller"] = {"columns": {"target": column(), "status": column()}}
    return {"tables": tables}


def test_the_idl_skips_counters_states_and_tables_we_do_not_use():
    columns = ovsdb.replicated_columns(schema())
    assert set(columns) == set(ovsdb.TABLES)   # no Controller, Mirror, ...
    assert columns["Interface"] == ["name", "ofport", "options"]
    assert columns["Bridge"] == ["flow_tables", "name", "ports"]


def test_green_threads_asking_at_once_share_one_connect(monkeypatch):
    connects = []

    def connect(self):
        connects.append(self.remote)
        hub.sleep(0.05)   # the schema fetch yields, as a socket read does
        return "the api"
    monkeypatch.setattr(ovsdb.Ovsdb, "_connect", connect)
    db = ovsdb.Ovsdb("tcp:127.0.0.1:1")
    threads = [hub.spawn(db.api) for _ in range(5)]
    assert [t.wait() for t in threads] == ["the api"] * 5
    assert connects == ["tcp:127.0.0.1:1"]


def test_a_failed_connect_is_tried_again_by_the_next_caller(monkeypatch):
    results = iter([ovsdb.OvsdbError("down"), "the api"])

    def connect(self):
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result
    monkeypatch.setattr(ovsdb.Ovsdb, "_connect", connect)
    db = ovsdb.Ovsdb("tcp:127.0.0.1:1")
    with pytest.raises(ovsdb.OvsdbError, match="down"):
        db.api()
    assert db.api() == "the api"
