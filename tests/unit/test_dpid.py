"""flows/dpid.py, the one place a datapath id becomes text or is read from it, and the
edges that use it: REST paths, the CLI, config files, the state documents (no switch,
no root)."""
import io
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from controller import config, plan, rest
from controller.ports import SwitchPorts
from controller.state import DpidKeyed, SqliteStateStore, StateError
from flows import bond, dpid, overlay
from sdn import main as cli

ROOT = Path(__file__).resolve().parents[2]
MAX = 2 ** 64 - 1
HEX = set(string.hexdigits)

ACCEPTED = [("00000000000000ff", 255), ("00000000000000FF", 255), ("0xff", 255),
            ("0XfF", 255), ("255", 255), ("0", 0), (255, 255), (0, 0), (MAX, MAX),
            ("ffffffffffffffff", MAX), ("0x" + "f" * 16, MAX), (str(MAX), MAX),
            ("0000000000000010", 16),   # 16 characters: hex, as ovs-ofctl reads them
            ("000000000000010", 10)]    # 15: decimal
REFUSED = ["", " 1", "1 ", "+1", "-1", "1_0", "0x", "0x" + "1" * 17, "x1", "0b1", "1e3",
           "00000000000000zz", "0000000000000000f", str(MAX + 1), "1" * 21, "\u0661",
           "0x\u0661", "s1", -1, MAX + 1, True, False, None, 1.0, b"1", ["1"]]


# --- parse and format -----------------------------------------------------------------

@pytest.mark.parametrize("text, number", ACCEPTED)
def test_each_documented_spelling_parses(text, number):
    assert dpid.parse(text) == number


@pytest.mark.parametrize("value", REFUSED)
def test_anything_else_is_refused_with_one_message(value):
    with pytest.raises(dpid.DpidError) as refused:
        dpid.parse(value)
    assert str(refused.value) == f"bad datapath id {value!r}: give {dpid.SPELLINGS}"
    assert isinstance(refused.value, ValueError)  # callers that catch ValueError still do


def test_format_is_16_lowercase_hex_digits_and_refuses_non_ids():
    assert dpid.format(255) == "00000000000000ff"
    assert dpid.format(MAX) == "ffffffffffffffff"
    for bad in (-1, MAX + 1, True, "00000000000000ff", None):
        with pytest.raises(dpid.DpidError):
            dpid.format(bad)


@given(st.integers(0, MAX))
def test_every_id_round_trips_through_each_spelling(number):
    text = dpid.format(number)
    assert len(text) == 16 and set(text) <= set("0123456789abcdef")
    assert int(text, 16) == number
    assert dpid.parse(text) == dpid.parse(text.upper()) == number
    assert dpid.parse(hex(number)) == dpid.parse(number) == number
    if len(str(number)) != 16:   # 16 characters are hex (the docstring says so)
        assert dpid.parse(str(number)) == number


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX + 1)))
def test_ints_outside_64_bits_are_refused(number):
    with pytest.raises(dpid.DpidError):
        dpid.parse(number)
    with pytest.raises(dpid.DpidError):
        dpid.format(number)


def _reads_as(text):
    """What the module docstring promises for `text`, written out independently."""
    if len(text) == 16 and set(text) <= HEX:
        return int(text, 16)
    if text[:2] in ("0x", "0X") and 1 <= len(text) - 2 <= 16 and set(text[2:]) <= HEX:
        return int(text[2:], 16)
    if 1 <= len(text) <= 20 and set(text) <= set(string.digits) and int(text) <= MAX:
        return int(text)
    return None


@given(st.one_of(st.text(max_size=24),
                 st.text(alphabet="0123456789abcdefABCDEFxX _+-\t\n", max_size=24)))
def test_text_parses_exactly_as_documented(text):
    expected = _reads_as(text)
    if expected is None:
        with pytest.raises(dpid.DpidError, match="bad datapath id"):
            dpid.parse(text)
    else:
        assert dpid.parse(text) == expected


def test_a_switch_reference_is_a_datapath_id_or_a_bridge_name():
    assert [dpid.of_ref(r) for r in (1, "0000000000000001", "0x1", "1")] == [1] * 4
    assert [dpid.of_ref(r) for r in ("s1", "br-int", "00000000000000zz", -1, True)] == \
        [None] * 5


# --- the edges: the same spellings in, the same refusal out ----------------------------

def _rest_error(text):
    with pytest.raises(rest.ApiError) as refused:
        rest.parse_dpid(text)
    assert refused.value.status == 400
    return refused.value.message


def _cli(config_file, *args):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["plan", str(config_file), *args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _overlay_config(int_dpid):
    return {"overlay": {"hypervisors": [{"name": "hv1", "int_dpid": int_dpid,
                                         "tun_dpid": 0x2001, "underlay_ip": "10.0.0.1"}]}}


SPELLINGS_OF_4097 = ["0000000000001001", "0x1001", "4097"]


@pytest.mark.parametrize("text", SPELLINGS_OF_4097)
def test_rest_cli_and_config_read_each_spelling_alike(text, tmp_path):
    assert rest.parse_dpid(text) == 4097
    settings = config.section(overlay.OverlaySettings, "overlay", _overlay_config(text))
    assert settings.model().role_of(4097) == ("hv1", "int")
    # the CLI's --dpid and the config's int_dpid, each in a different spelling, meet
    for other in SPELLINGS_OF_4097:
        path = tmp_path / "overlay.yaml"
        path.write_text(f'overlay: {{hypervisors: [{{name: hv1, int_dpid: "{text}", '
                        f'tun_dpid: 8193, underlay_ip: 10.0.0.1}}]}}\n')
        code, out, err = _cli(path, "--switch", "br-int", "--dpid", other)
        assert code == 0 and "no hypervisor's int_dpid" not in out, (other, err)
    switch = SwitchPorts(type("Datapath", (), {"id": 4097})())
    assert switch.is_named(text) and switch.is_named(text.upper()) and not switch.is_named("4096")


@pytest.mark.parametrize("text", ["zz", "-1", "1_0", " 1", "0x", "18446744073709551616",
                                  "00000000000000zz"])
def test_rest_cli_and_config_refuse_the_same_text_with_the_same_message(text, tmp_path):
    message = f"bad datapath id {text!r}: give {dpid.SPELLINGS}"
    assert _rest_error(text) == message
    with pytest.raises(config.ConfigError) as refused:
        config.section(overlay.OverlaySettings, "overlay", _overlay_config(text))
    assert str(refused.value).endswith(f"int_dpid: {message}")
    path = tmp_path / "empty.yaml"
    path.write_text("vlan: {}\n")
    code, _, err = _cli(path, "--dpid", text)
    assert code == 2 and err.strip() == f"sdn: plan: {message}"


def test_the_plan_names_a_switch_as_the_logs_do():
    switch = plan.planned_switch("s1", 0xAB, {})
    result = plan.plan(_overlay_config(1), switch, "netdev")
    assert "overlay: datapath 00000000000000ab is no hypervisor's" in result["problems"][0]


def test_bonds_named_by_datapath_id_are_known_in_every_spelling():
    settings = bond.BondSettings(bonds=[
        {"switch": s, "name": f"b{n}", "members": ["a", "b"]}
        for n, s in enumerate((1, "0000000000000002", "0x3", "4", "s5"))])
    assert bond.known_bonded(settings, {6: {"b6": {}}, 7: {"b7": None}}) == {1, 2, 3, 4, 6}
    assert bond.named_bridges(settings) == {"s5"}


# --- state documents: ints in memory, 16 hex digits on disk ----------------------------

def test_an_old_hex_keyed_document_loads_with_int_keys_and_saves_as_before(tmp_path):
    old = {"0000000000000001": {"3": {"tag": 7}}, "00000000000000ff": {}}
    revision = SqliteStateStore("vlan", tmp_path).save(old, 0)   # as an older controller wrote it
    store = DpidKeyed(SqliteStateStore("vlan", tmp_path))
    assert store.load() == ({1: {"3": {"tag": 7}}, 255: {}}, revision)
    store.save({1: {"3": {"tag": 8}}, 0x1001: {}}, revision)
    assert SqliteStateStore("vlan", tmp_path).load()[0] == {
        "0000000000000001": {"3": {"tag": 8}}, "0000000000001001": {}}
    assert store.load()[0] == {1: {"3": {"tag": 8}}, 4097: {}}


def test_a_legacy_json_file_keyed_by_hex_is_imported_with_int_keys(tmp_path):
    (tmp_path / "qos.json").write_text('{"0000000000000002": {"ports": {}}}')
    assert DpidKeyed(SqliteStateStore("qos", tmp_path)).load()[0] == {2: {"ports": {}}}
    assert SqliteStateStore("qos", tmp_path).load()[0] == {"0000000000000002": {"ports": {}}}


@pytest.mark.parametrize("document", ['{"s1": {}}', '{"1": {}, "0000000000000001": {}}'])
def test_a_document_with_a_key_that_is_no_datapath_id_is_a_clear_error(tmp_path, document):
    (tmp_path / "bond.json").write_text(document)
    with pytest.raises(StateError, match=r"state of bond: .*datapath id"):
        DpidKeyed(SqliteStateStore("bond", tmp_path)).load()


# --- one module formats -----------------------------------------------------------------

def test_no_module_but_flows_dpid_formats_a_datapath_id_itself():
    """"%016x" and f"{x:016x}" anywhere else is a second spelling waiting to drift."""
    pattern = re.compile(r"016[xX]")
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for package in ("apps", "controller", "flows")
                 for path in sorted((ROOT / package).rglob("*.py"))
                 if path != ROOT / "flows" / "dpid.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
    assert pattern.search((ROOT / "flows" / "dpid.py").read_text())  # the scan sees a site
