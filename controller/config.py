"""Config file loading: YAML, one section per app, validated with clear errors.

The file is named by `SDN_CONFIG` (ryu-manager passes no options to apps);
without it every app runs on its defaults. Unknown keys are errors, so a typo
never silently falls back to a default.

A file must say one thing: a key given twice at any level is an error (PyYAML keeps
the last one silently), and so is a plain scalar that YAML 1.1 reads differently
from what it looks like: `010` (octal, 8), `0o10`, `0b10`, `1:30` (base 60, 90),
`yes`/`no`/`on`/`off` (booleans). Quote such a value or write it plainly (`10`,
`true`). Errors name the file, the line and the key, as FAUCET's loader does.
"""
import dataclasses
import os
import re

import yaml

ENV_VAR = "SDN_CONFIG"


class ConfigError(ValueError):
    pass


# Plain scalars that YAML 1.1 resolves to something other than what they read as.
_AMBIGUOUS = (
    (re.compile(r"[-+]?0[0-9_]+$"), "YAML 1.1 reads a leading 0 as octal"),
    (re.compile(r"[-+]?0[oObB][0-9a-fA-F_]+$"), "an octal or binary literal"),
    (re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$"),
     "YAML 1.1 reads it as a base-60 number"),
    (re.compile(r"(?i)(yes|no|on|off|y|n)$"), "YAML 1.1 reads it as a boolean"),
)


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys and ambiguous plain scalars."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            where = f"line {key_node.start_mark.line + 1}"
            if isinstance(key, (list, dict)):
                raise ConfigError(f"{where}: a key must be a plain value")
            if key in seen:
                raise ConfigError(f"{where}: key {key!r} given twice (first on line "
                                  f"{seen[key]}); say it once")
            seen[key] = key_node.start_mark.line + 1
            self._refuse_ambiguous(key_node, key)
            self._refuse_ambiguous(value_node, key)
        return super().construct_mapping(node, deep=deep)

    @staticmethod
    def _refuse_ambiguous(node, key):
        nodes = [node]
        while nodes:  # a key's scalar, or the scalars of the lists under it
            item = nodes.pop()
            if isinstance(item, yaml.SequenceNode):
                nodes.extend(item.value)
            elif isinstance(item, yaml.ScalarNode) and item.style is None:
                for pattern, why in _AMBIGUOUS:
                    if pattern.match(item.value):
                        raise ConfigError(
                            f"line {item.start_mark.line + 1}: key {key!r}: {item.value!r} is "
                            f"ambiguous ({why}); quote it or write it plainly")


def parse_text(text: str, path: str = "<config>"):
    """The document in `text`, strictly (see the module docstring)."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader
    except ConfigError as err:
        raise ConfigError(f"config file {path}, {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None


def load_file(path=None) -> dict:
    path = path or os.environ.get(ENV_VAR)
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text: {err}") from None
    data = parse_text(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of app sections")
    return data


def section(settings_cls, name, data=None):
    """Build `settings_cls` (a dataclass validating itself) from section `name`."""
    data = load_file() if data is None else data
    raw = data.get(name) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config section {name!r} must be a mapping")
    try:
        return build(settings_cls, raw)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config section {name!r}: {err}") from None


def build(settings_cls, raw: dict, where=""):
    """`settings_cls` from the mapping `raw` (a section, or a mapping `where` inside
    one): a key it does not know is an error, never ignored."""
    known = {f.name for f in dataclasses.fields(settings_cls)}
    unknown = sorted(map(str, set(raw) - known))
    if unknown:
        raise ValueError(f"{where}unknown key(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    return settings_cls(**raw)


# --- the `state` section: where apps keep their REST-made documents (controller/state.py)

_ENDPOINT = re.compile(r"https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})/?$")
_PREFIX = re.compile(r"/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclasses.dataclass(frozen=True)
class EtcdSettings:
    """`state.etcd`: the etcd cluster the documents live in (controller/etcd_store.py)."""
    endpoints: tuple = ("http://127.0.0.1:2379",)   # tried in turn when one fails
    prefix: str = "/sdn"        # every key of ours is below it
    cluster: str = "sdn"        # the name stored under the prefix: another one is refused
    timeout_s: float = 5.0      # longest a load or save waits for etcd, all endpoints tried
    # TLS to https:// endpoints: the CA that signed etcd's certificate (default: the
    # system's), and this node's client certificate and key when etcd asks for one
    ca_file: str = None
    cert_file: str = None
    key_file: str = None

    def __post_init__(self):
        endpoints = self.endpoints
        if isinstance(endpoints, str) or not isinstance(endpoints, (list, tuple)) \
                or not endpoints:
            raise ValueError(f"etcd.endpoints must be a non-empty list of URLs, not "
                             f"{endpoints!r}")
        for index, url in enumerate(endpoints):
            match = _ENDPOINT.match(url) if isinstance(url, str) else None
            if match is None or not 1 <= int(match.group(2)) <= 65535:
                raise ValueError(f"etcd.endpoints[{index}] must be http(s)://host:port, not "
                                 f"{url!r}")
        endpoints = tuple(url.rstrip("/") for url in endpoints)
        if len(set(endpoints)) != len(endpoints):
            raise ValueError("etcd.endpoints names an endpoint twice")
        object.__setattr__(self, "endpoints", endpoints)
        if not isinstance(self.prefix, str) or not _PREFIX.match(self.prefix):
            raise ValueError(f"etcd.prefix must be a key path like /sdn (letters, digits, "
                             f"'.', '_', '-' between slashes), not {self.prefix!r}")
        if not isinstance(self.cluster, str) or not _NAME.match(self.cluster):
            raise ValueError(f"etcd.cluster must be a name (letters, digits, '.', '_', '-'), "
                             f"not {self.cluster!r}")
        value = self.timeout_s
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 < value <= 600:
            raise ValueError(f"etcd.timeout_s must be a number of seconds in (0, 600], "
                             f"not {value!r}")
        self._check_tls()

    def _check_tls(self):
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"etcd.{name} must be a file path, not {value!r}")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("etcd.cert_file and etcd.key_file go together")
        https = any(url.startswith("https://") for url in self.endpoints)
        if not https and (self.ca_file or self.cert_file):
            raise ValueError("etcd.ca_file, cert_file and key_file are for https:// "
                             "endpoints; every endpoint is http://")


@dataclasses.dataclass(frozen=True)
class StateSettings:
    """The `state` section: `backend: sqlite` (one node, the default) or `etcd`."""
    backend: str = "sqlite"
    etcd: EtcdSettings = None   # a mapping in the file; its defaults when absent

    def __post_init__(self):
        if self.backend not in ("sqlite", "etcd"):
            raise ValueError(f"backend must be 'sqlite' or 'etcd', not {self.backend!r}")
        raw = {} if self.etcd is None else self.etcd
        if isinstance(raw, EtcdSettings):
            return
        if not isinstance(raw, dict):
            raise ValueError(f"etcd must be a mapping, not {raw!r}")
        object.__setattr__(self, "etcd", build(EtcdSettings, raw, "etcd: "))


def state_settings(data=None) -> StateSettings:
    """The `state` section of `data` (None: the running config file)."""
    return section(StateSettings, "state", data)


# --- the `cluster` section: this node of a controller cluster (controller/etcd_elector.py)

_REST_URL = re.compile(r"https?://(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?(/\S*)?$")


@dataclasses.dataclass(frozen=True)
class ClusterSettings:
    """The `cluster` section: present, this ryu-manager is one node of a cluster that
    elects a master per switch in etcd (it needs `state.backend: etcd`); absent, it is a
    single controller."""
    node_id: str = None         # this node's name, unique in the cluster (required)
    lease_s: int = 2            # TTL of the node's etcd lease: how soon a dead node's
    #                             switches are taken over (etcd's minimum TTL is 2 s)
    rest_url: str = None        # where this node's REST API is reached (in its node record)

    def __post_init__(self):
        if self.node_id is None:
            raise ValueError("node_id is required: this node's name in the cluster")
        if not isinstance(self.node_id, str) or not _NAME.match(self.node_id):
            raise ValueError(f"node_id must be a name (letters, digits, '.', '_', '-'), not "
                             f"{self.node_id!r}")
        if type(self.lease_s) is not int or self.lease_s not in range(2, 61):
            raise ValueError(f"lease_s must be a whole number of seconds in [2, 60] (etcd's "
                             f"shortest lease is 2 s), not {self.lease_s!r}")
        if self.rest_url is not None and (not isinstance(self.rest_url, str)
                                          or not _REST_URL.match(self.rest_url)):
            raise ValueError(f"rest_url must be an http(s):// URL, not {self.rest_url!r}")


def cluster_settings(data=None):
    """(ClusterSettings, EtcdSettings) of a cluster node, or None without a `cluster`
    section. A cluster keeps its election in the state store's etcd, so it needs
    `state.backend: etcd`."""
    data = load_file() if data is None else data
    if "cluster" not in data:
        return None
    cluster = section(ClusterSettings, "cluster", data)
    state = state_settings(data)
    if state.backend != "etcd":
        raise ConfigError(f"config section 'cluster': a cluster node needs `state.backend: "
                          f"etcd` (its election and shared state live there), not "
                          f"{state.backend!r}")
    return cluster, state.etcd
