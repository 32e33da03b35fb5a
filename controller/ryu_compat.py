"""The one Ryu 4.34 compatibility fix this project needs on Python 3.11.

Ryu 4.34 does `from eventlet.wsgi import ALREADY_HANDLED` in `ryu.app.wsgi`,
which `ryu/cmd/manager.py` imports at its very top. That name was removed from
eventlet in 0.30.3, and the last eventlet that has it (0.30.2) does not import
on Python 3.11. So the stock `ryu-manager` dies before any app is loaded.

Newer eventlet marks a response as already handled with
`eventlet.wsgi.WSGI_LOCAL.already_handled`, and its websocket handler sets
that flag itself. Ryu only returns ALREADY_HANDLED as the body of a websocket
response, so an empty iterable is the correct stand-in: eventlet writes
nothing and then honours the flag.

Because the import happens inside `ryu-manager` before any of our code runs,
the fix must be in place at interpreter start: `make setup` writes a `.pth`
file into the venv that calls `install()`. `install()` is cheap: it does not
import eventlet, it only registers an import hook that adds the attribute right
after `eventlet.wsgi` is first loaded.

The same hook hardens Ryu's OpenFlow channel in every ryu-manager of the venv, our
apps or not: right after `ryu.controller.controller` is loaded it runs
`controller.ofguard.install()` (bounded parsing of what switches send, per-connection
limits, OpenFlow on 127.0.0.1 by default; see that module).
"""
import importlib.machinery
import sys

_TARGET = "eventlet.wsgi"
_OPENFLOW = "ryu.controller.controller"


def _patch(module) -> None:
    if not hasattr(module, "ALREADY_HANDLED"):
        module.ALREADY_HANDLED = ()


def _guard_openflow(module) -> None:
    importing = sys.modules.get("controller.ofguard")
    if importing is not None and not hasattr(importing, "install"):
        return  # Ryu's controller loads because ofguard is being imported: whoever
        # imports it installs it (controller.southbound does)
    from controller import ofguard  # imports Ryu: only once Ryu's controller is loaded
    ofguard.install()


_PATCHES = {_TARGET: _patch, _OPENFLOW: _guard_openflow}


class _EventletWsgiHook:
    """A meta path finder (plain class: importlib.abc costs ~15 ms at every start)."""

    def find_spec(self, fullname, path, target=None):
        patch = _PATCHES.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Make `from eventlet.wsgi import ALREADY_HANDLED` work and guard Ryu's OpenFlow
    channel; idempotent."""
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    if not all(name in sys.modules for name in _PATCHES) and \
            not any(isinstance(f, _EventletWsgiHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _EventletWsgiHook())
