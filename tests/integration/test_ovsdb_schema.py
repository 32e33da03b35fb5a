"""The controller's OVSDB replica (controller/ovsdb.py) against the schema of the Open
vSwitch installed here: it keeps every column the apps read and leaves out what
ovs-vswitchd rewrites every few seconds. Needs Open vSwitch installed (make setup), not
running; tests/unit/test_ovsdb_idle.py checks the same rules on a made-up schema."""
import json
from pathlib import Path

import pytest

from controller import ovsdb

pytestmark = pytest.mark.integration


def test_against_the_installed_schema_we_keep_what_we_use_and_drop_what_churns():
    path = Path("/usr/share/openvswitch/vswitch.ovsschema")   # Debian's openvswitch-common
    assert path.exists(), "make setup installs Open vSwitch, whose schema this reads"
    real = json.loads(path.read_text())
    for table, names in ovsdb.VOLATILE.items():   # a misspelt name would stay watched
        assert names <= set(real["tables"][table]["columns"]), table
    columns = ovsdb.replicated_columns(real)
    used = {"Open_vSwitch": {"bridges", "cur_cfg", "next_cfg"},
            "Bridge": {"name", "datapath_id", "datapath_type", "ports", "flow_tables"},
            "Port": {"name", "interfaces", "qos", "bond_mode", "lacp", "other_config",
                     "external_ids"},
            "Interface": {"name", "type", "options", "ofport", "external_ids",
                          "ingress_policing_rate", "ingress_policing_burst"},
            "QoS": {"type", "queues", "other_config", "external_ids"},
            "Queue": {"other_config", "external_ids"},
            "Flow_Table": {"name", "flow_limit", "overflow_policy", "external_ids"}}
    for table, names in used.items():
        assert names <= set(columns[table]), (table, names - set(columns[table]))
    assert "statistics" not in columns["Interface"] and "status" not in columns["Bridge"]
