"""flows/switch_entries.py: the config entries of the vlan, qos and bond sections that
name a switch and a port (or a bond), read in one place (no switch, no root)."""
import re

import pytest
from hypothesis import given, strategies as st

from controller import config
from controller.ports import SwitchPorts
from flows import bond, dpid, qos_rules, switch_entries, vlan
from flows.egress import MAX_PORT

MAX = 2 ** 64 - 1
QOS = {"max_rate": "10M", "queues": {0: {"min_rate": "3M"}}}   # a port's settings
SECTIONS = {"vlan": vlan.VlanSettings, "qos": qos_rules.QosSettings, "bond": bond.BondSettings}


def _vlan(switch, port=1):
    return vlan.VlanSettings(ports=[{"switch": switch, "port": port, "tag": 10}])


def _qos_port(switch, port="s1-eth4"):
    return qos_rules.QosSettings(ports=[dict(QOS, switch=switch, port=port)])


def _qos_rule(switch):
    return qos_rules.QosSettings(rules=[{"switch": switch, "match": {"in_port": 1}, "queue": 0}])


def _bond(switch):
    return bond.BondSettings(bonds=[{"switch": switch, "name": "bond0", "members": ["a", "b"]}])


EVERY_SECTION = [_vlan, _qos_port, _qos_rule, _bond]
KEY_OF = {_vlan: "ports[0] switch", _qos_port: "ports[0] switch",
          _qos_rule: "rules[0] switch", _bond: "bonds[0] switch"}


# --- switch references ---------------------------------------------------------------

@pytest.mark.parametrize("ref", ["s1", "br0", "br-int", "a" * 15, "x1", "0b1", "1e3",
                                 1, 0, MAX, "0x3", "0XfF", "255", str(MAX),
                                 "0000000000000002", "00000000000000FF"])
@pytest.mark.parametrize("build", EVERY_SECTION)
def test_every_section_takes_a_bridge_name_or_a_datapath_id_in_any_spelling(build, ref):
    build(ref)


@pytest.mark.parametrize("ref", [True, False, -1, MAX + 1, 2 ** 100, "-1", "+1",
                                 str(MAX + 1), "1" * 21, "0x", "0x1g", "0x" + "1" * 17])
@pytest.mark.parametrize("build", EVERY_SECTION)
def test_a_number_that_is_no_datapath_id_is_refused_naming_the_key(build, ref):
    """Negative, 2**64 or more, a bool (YAML's yes/true), bad hex: no switch has it, and
    taking it for a bridge name would only make the entry match nothing, silently."""
    with pytest.raises(ValueError) as err:
        build(ref)
    assert str(err.value) == f"{KEY_OF[build]}: bad datapath id {ref!r}: give {dpid.SPELLINGS}"


@pytest.mark.parametrize("ref", ["", "s" * 16, "br 0", " s1", "s1\n", "a/b", "s1:0",
                                 None, 1.0, ["s1"], {"name": "s1"}, b"s1"])
@pytest.mark.parametrize("build", EVERY_SECTION)
def test_a_switch_that_no_bridge_can_be_called_is_refused_naming_the_key(build, ref):
    with pytest.raises(ValueError) as err:
        build(ref)
    assert str(err.value) == (f"{KEY_OF[build]} must be a bridge name (1-15 characters, "
                              f"no '/', ':' or spaces) or a datapath id ({dpid.SPELLINGS}), "
                              f"not {ref!r}")


@given(st.one_of(st.text(max_size=20), st.integers(min_value=-2, max_value=2 ** 65),
                 st.booleans(), st.none(), st.floats()))
def test_a_switch_reference_is_taken_exactly_when_it_can_name_some_switch(ref):
    """Taken: what flows/dpid.py parses, or text no parser reads as a number that fits a
    Linux device name. A taken reference never crashes the matching a connect does."""
    as_dpid = dpid.of_ref(ref)
    name_like = isinstance(ref, str) and 0 < len(ref) <= 15 and \
        not any(c in "/:" or c.isspace() for c in ref) and \
        not re.fullmatch(r"[+-]?[0-9]+|[+-]?0[xX].*", ref)
    try:
        switch_entries.switch_ref(ref, "switch")
        taken = True
    except ValueError:
        taken = False
    assert taken == (as_dpid is not None or name_like)
    if taken:
        switch = SwitchPorts(type("Datapath", (), {"id": 7 if as_dpid is None else as_dpid})())
        switch.name = ref if as_dpid is None else "s7"
        assert switch.is_named(ref)


# --- port references -----------------------------------------------------------------

@pytest.mark.parametrize("port", [1, MAX_PORT, "3", str(MAX_PORT), "s1-eth4", "vm1", "a\u00b2"])
@pytest.mark.parametrize("build", [_vlan, _qos_port])
def test_a_port_is_a_number_or_a_name(build, port):
    build("s1", port)


@pytest.mark.parametrize("port", [True, False, 0, -1, MAX_PORT + 1, "0", str(MAX_PORT + 1),
                                  "", "\u00b2", None, 1.0, [1]])
@pytest.mark.parametrize("build", [_vlan, _qos_port])
def test_a_port_no_switch_can_have_is_refused_naming_the_key(build, port):
    """True was port 1 and "²" crashed a connect (int() refuses what isdigit() takes)."""
    with pytest.raises(ValueError) as err:
        build("s1", port)
    assert str(err.value) == (f"ports[0] port must be a port number 1..{MAX_PORT} or a port "
                              f"name, not {port!r}")


# --- the shape of an entry, and the messages the sections gave before ----------------

@pytest.mark.parametrize("section, entry, message", [
    ("vlan", {"ports": [{"switch": "br0", "tag": 5}]}, "ports[0] needs switch and port"),
    ("vlan", {"ports": [{"port": 1, "tag": 5}]}, "ports[0] needs switch and port"),
    ("vlan", {"ports": ["br0"]}, "ports[0] needs switch and port"),
    ("vlan", {"ports": [{"switch": "s1", "port": 2, "tag": 5000}]},
     "ports[0] (s1 2): tag must be"),
    ("qos", {"ports": [dict(QOS, switch="s1", port="s1-eth4"),
                       {"port": "s1-eth4"}]},
     "ports[1] needs switch and port"),
    ("qos", {"ports": [{"switch": "0x1", "port": "s1-eth4", "max_rate": "fast"}]},
     "ports[0] (0x1 s1-eth4): "),
    ("qos", {"rules": [{"match": {}}]}, "rules[0] needs a switch"),
    ("qos", {"rules": [{"switch": "s1", "id": 0, "match": {}}]}, "rules[0] id must be"),
    ("qos", {"rules": [{"switch": "s1", "id": 4}, {"switch": "s1", "id": 4}]},
     "rules[1]: id 4 repeats; give each rule an id"),
    ("qos", {"rules": [{"switch": "s1"}, {"switch": "s1", "id": 1}]},
     "rules[1]: id 1 repeats"),   # the first one's id defaults to its place, 1
    ("qos", {"rules": [{"switch": "s1", "colour": 1}]}, "rules[0]: unknown key(s) colour"),
    ("bond", {"bonds": [{"members": ["a", "b"]}]}, "bonds[0] needs switch and name"),
    ("bond", {"bonds": [{"switch": "s1", "name": "b0", "members": ["a"]}]},
     "bonds[0]: bond b0: members must be"),
])
def test_bad_entries_stop_the_config_with_the_same_messages_as_before(section, entry, message):
    with pytest.raises(config.ConfigError) as err:
        config.section(SECTIONS[section], section, {section: entry})
    assert str(err.value).startswith(f"config section {section!r}: {message}")


def test_entries_come_out_as_given_and_in_order():
    settings = qos_rules.QosSettings(
        ports=[dict(QOS, switch="s1", port="s1-eth4"), dict(QOS, switch=2, port=3)],
        rules=[{"switch": "0x2", "match": {"in_port": 1}, "queue": 0},
               {"switch": "0x2", "id": 7, "match": {"in_port": 2}, "queue": 0}])
    assert settings.ports == (("s1", "s1-eth4", QOS), (2, 3, QOS))
    assert [(s, i) for s, i, _ in settings.rules] == [("0x2", 1), ("0x2", 7)]
    assert "id" not in settings.rules[1][2]
    assert list(switch_entries.keyed([{"switch": "s1", "name": "b", "x": 1}], "bonds",
                                     ("switch", "name"))) == [("bonds[0]", ("s1", "b"), {"x": 1})]
    assert list(switch_entries.keyed(None, "bonds", ("switch",))) == []
