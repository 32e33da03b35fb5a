"""A config file says one thing: duplicate keys and YAML 1.1's surprising scalars are
errors that name the file, the line and the key (controller/config.py)."""
import pytest

from controller import config

REFUSED = {
    "a second section": ("l2_switch: {mode: reactive}\nvlan: {}\nl2_switch: {mode: datapath}\n",
                         "line 3: key 'l2_switch' given twice (first on line 1)"),
    "a key twice in a section": ("qos:\n  ports: []\n  rules: []\n  ports: []\n",
                                 "line 4: key 'ports' given twice (first on line 2)"),
    "a key twice deep down": ("vlan:\n  ports:\n    - {port: 1, tag: 10, tag: 20}\n",
                              "line 3: key 'tag' given twice"),
    "octal port": ("vlan:\n  ports:\n    - {port: 010, tag: 10}\n",
                   "line 3: key 'port': '010' is ambiguous (YAML 1.1 reads a leading 0"),
    "octal in a list": ("vlan:\n  trunks: [10, 020]\n", "line 2: key 'trunks': '020'"),
    "0o literal": ("qos: {rate: 0o17}\n", "key 'rate': '0o17' is ambiguous"),
    "base 60": ("lb: {timeout: 1:30}\n", "key 'timeout': '1:30' is ambiguous (YAML 1.1 reads "
                                          "it as a base-60"),
    "yes/no boolean": ("bond: {lacp: off}\n", "key 'lacp': 'off' is ambiguous (YAML 1.1 reads "
                                               "it as a boolean)"),
    "an ambiguous key": ("vlan:\n  010: x\n", "line 2: key 8: '010' is ambiguous"),
}


@pytest.mark.parametrize("text, message", REFUSED.values(), ids=REFUSED.keys())
def test_a_file_that_says_two_things_is_refused_with_file_line_and_key(tmp_path, text, message):
    path = tmp_path / "sdn.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as err:
        config.load_file(str(path))
    assert f"config file {path}, " in str(err.value) and message in str(err.value)


ACCEPTED = {
    "plain numbers": ("vlan: {port: 10, rate: 1_000, f: 0.5, hex: 0x10}\n",
                      {"vlan": {"port": 10, "rate": 1000, "f": 0.5, "hex": 16}}),
    "quoted look-alikes": ("x: {a: '010', b: \"1:30\", c: 'off'}\n",
                           {"x": {"a": "010", "b": "1:30", "c": "off"}}),
    "true/false and a MAC": ("x: {on_: true, mac: 10:22:33:44:55:66}\n",
                             {"x": {"on_": True, "mac": "10:22:33:44:55:66"}}),
    "the same key in two sections": ("a: {port: 1}\nb: {port: 1}\n",
                                     {"a": {"port": 1}, "b": {"port": 1}}),
    "JSON (the harness writes JSON)": ('{"vlan": {"ports": [{"port": 1, "tag": 10}]}}',
                                       {"vlan": {"ports": [{"port": 1, "tag": 10}]}}),
}


@pytest.mark.parametrize("text, expected", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_files_that_say_one_thing_load_as_before(tmp_path, text, expected):
    path = tmp_path / "sdn.yaml"
    path.write_text(text)
    assert config.load_file(str(path)) == expected


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "sdn.yaml"
    path.write_bytes(b"vlan: {name: \xff}\n")
    with pytest.raises(config.ConfigError, match="not UTF-8"):
        config.load_file(str(path))
