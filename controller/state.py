"""Persistent state: what REST changed survives a controller restart.

One JSON file per app under the state directory (`SDN_STATE_DIR`, default
/var/lib/sdn-ovs-labs). Writes are atomic (temp file, fsync, rename), so a crash
mid-write leaves the previous state, never half a file.
"""
import json
import os
import tempfile
from pathlib import Path

ENV_VAR = "SDN_STATE_DIR"
DEFAULT_DIR = "/var/lib/sdn-ovs-labs"


class StateError(RuntimeError):
    pass


class StateStore:
    def __init__(self, app: str, directory=None):
        self.path = Path(directory or os.environ.get(ENV_VAR, DEFAULT_DIR)) / f"{app}.json"

    def load(self) -> dict:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise StateError(f"cannot read state file {self.path}: {err.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError as err:
            raise StateError(f"state file {self.path} is corrupt ({err}); move it away to "
                             f"start from the config file alone") from None
        if not isinstance(data, dict):
            raise StateError(f"state file {self.path} must hold a JSON object")
        return data

    def save(self, data: dict) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            raise StateError(f"cannot save state to {self.path}: {err.strerror}") from None
