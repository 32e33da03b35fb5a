"""Config file loading: YAML, one section per app, validated with clear errors.

The file is named by `SDN_CONFIG` (ryu-manager passes no options to apps);
without it every app runs on its defaults. Unknown keys are errors, so a typo
never silently falls back to a default.
"""
import dataclasses
import os

import yaml

ENV_VAR = "SDN_CONFIG"


class ConfigError(ValueError):
    pass


def load_file(path=None) -> dict:
    path = path or os.environ.get(ENV_VAR)
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
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
    known = {f.name for f in dataclasses.fields(settings_cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"config section {name!r}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(known))}")
    try:
        return settings_cls(**raw)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config section {name!r}: {err}") from None
