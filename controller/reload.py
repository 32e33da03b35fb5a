"""Config reload while running: `kill -HUP` the controller or `POST /v1/config/reload`
(controller/runtime_api.py).

The file is read again and every app checks its section first; only when all of them
accept it do they switch over (each the way it starts: new settings, then its
switches reconciled, so only what differs changes). A bad file changes nothing: the
running config stays, the error is logged and shown by `GET /v1/config`.
"""
import logging
import os
import signal
import time
from ryu.lib import hub

from controller import config, rest

LOG = logging.getLogger(__name__)
REFUSED_MARK = "config reload refused"  # tests grep logs for this
_participants = {}   # name -> (prepare(data) -> new settings, apply(new settings))
_status = {"file": None, "reloads": 0, "last_error": None, "last_attempt": None}
_installed = []
_API = (lambda data: config.section(rest.ApiSettings, "api", data),  # shared by every app
        lambda settings: setattr(rest.AppController, "api_settings", settings))


def participate(name, prepare, apply):
    """`prepare(data)` builds the app's settings from the file's data (raising
    config.ConfigError or ValueError when they are bad); `apply(settings)` switches
    the running app over. The first participant also installs the SIGHUP handler."""
    _participants[name] = (prepare, apply)
    if not _installed:
        _installed.append(True)
        signal.signal(signal.SIGHUP, lambda *_: hub.spawn(reload))


def reload() -> dict:
    """Read the config file again and apply it if every app accepts it."""
    _status["file"] = os.environ.get(config.ENV_VAR)
    _status["last_attempt"] = time.time()
    try:
        data = config.load_file()
        prepared = []
        for name, (prepare, apply) in sorted(dict(_participants, api=_API).items()):
            try:
                prepared.append((name, apply, prepare(data)))
            except (config.ConfigError, ValueError) as err:
                message = str(err)
                raise config.ConfigError(message if message.startswith(f"{name}:")
                                         else f"{name}: {message}") from None
    except config.ConfigError as err:
        _status["last_error"] = str(err)
        LOG.error("%s, the running config stays: %s", REFUSED_MARK, err)
        return status()
    for name, apply, settings in prepared:
        apply(settings)
    _status["reloads"] += 1
    _status["last_error"] = None
    LOG.info("config reloaded from %s (%s)", _status["file"] or "defaults",
             ", ".join(name for name, _, _ in prepared))
    return status()


def status() -> dict:
    return dict(_status, ok=_status["last_error"] is None)
