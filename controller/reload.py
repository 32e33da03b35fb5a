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

from controller import config, metrics, rest

LOG = logging.getLogger(__name__)
REFUSED_MARK = "config reload refused"  # tests grep logs for this
_API = (lambda data: config.section(rest.ApiSettings, "api", data),  # shared by every app
        lambda settings: setattr(rest.AppController, "api_settings", settings))


class Reloader:
    """The reload participants of one ryu-manager's apps (held by its Runtime)."""

    def __init__(self):
        self._participants = {}   # name -> (prepare(data) -> new settings, apply(new settings))
        self._status = {"file": None, "reloads": 0, "last_error": None, "last_attempt": None}
        self._signal_installed = False

    def participate(self, name, prepare, apply):
        """`prepare(data)` builds the app's settings from the file's data (raising
        config.ConfigError or ValueError when they are bad); `apply(settings)` switches
        the running app over. The first participant also installs the SIGHUP handler."""
        self._participants[name] = (prepare, apply)
        if not self._signal_installed:
            self._signal_installed = True
            signal.signal(signal.SIGHUP, lambda *_: hub.spawn(self.reload))

    def reload(self) -> dict:
        """Read the config file again and apply it if every app accepts it."""
        status = self._status
        status["file"] = os.environ.get(config.ENV_VAR)
        status["last_attempt"] = time.time()
        try:
            data = config.load_file()
            prepared = []
            for name, (prepare, apply) in sorted(dict(self._participants, api=_API).items()):
                try:
                    prepared.append((name, apply, prepare(data)))
                except (config.ConfigError, ValueError) as err:
                    message = str(err)
                    raise config.ConfigError(message if message.startswith(f"{name}:")
                                             else f"{name}: {message}") from None
        except config.ConfigError as err:
            status["last_error"] = str(err)
            metrics.CONFIG_RELOADS.labels("refused").inc()
            LOG.error("%s, the running config stays: %s", REFUSED_MARK, err)
            return self.status()
        for name, apply, settings in prepared:
            apply(settings)
        status["reloads"] += 1
        metrics.CONFIG_RELOADS.labels("applied").inc()
        status["last_error"] = None
        LOG.info("config reloaded from %s (%s)", status["file"] or "defaults",
                 ", ".join(name for name, _, _ in prepared))
        return self.status()

    def status(self) -> dict:
        return dict(self._status, ok=self._status["last_error"] is None)
