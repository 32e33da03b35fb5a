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
file into the venv that calls `install()`. `sdn-controller` (controller/launcher.py)
calls it itself before it imports Ryu's manager, so an installed copy needs no `.pth`. `install()` is cheap: it does not
import eventlet, it only registers an import hook that adds the attribute right
after `eventlet.wsgi` is first loaded.

The same hook hardens Ryu's OpenFlow channel in every ryu-manager of the venv, our
apps or not: right after `ryu.controller.controller` is loaded it runs
`controller.ofguard.install()` (bounded parsing of what switches send, per-connection
limits, OpenFlow on 127.0.0.1 by default; see that module).

Two lines of start-up noise go too (issue 19), here because this is where every Python
of the venv starts (ryu-manager, the bench, the labs, pytest):

- eventlet 0.41 warns at import, in an eight-line EventletDeprecationWarning, that it
  is deprecated. Ryu 4.34 is built on eventlet and there is no other hub to move to
  while we stay on Ryu, so the banner tells an operator nothing they can act on and
  hides the lines that matter at the top of every log. Only that warning is filtered
  (by its text: the class cannot be named without importing eventlet); every other
  warning shows as before.
- "1 RLock(s) were not greened": Ryu's manager patches threading only in main(), after
  its imports have created locks (logging's handlers), and eventlet cannot reach one
  of them. Right before `ryu.cmd.manager` runs we do the whole monkey patch, so no
  lock exists unpatched; Ryu's own patch calls then find everything done. Not with
  --enable-debugger (Ryu leaves threads alone then) or a hub other than eventlet.
"""
import importlib.machinery
import os
import sys
import warnings

_TARGET = "eventlet.wsgi"
_OPENFLOW = "ryu.controller.controller"
_MANAGER = "ryu.cmd.manager"
EVENTLET_BANNER = r"\s*Eventlet is deprecated"   # the start of eventlet's warning text


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


def _green_first(module) -> None:
    """Before ryu-manager's module runs: eventlet's whole monkey patch, threads too.
    Skipped for --enable-debugger on the command line, as Ryu skips it (the option set
    in a config file is not seen this early: threads are then green anyway)."""
    if "--enable-debugger" in sys.argv or os.environ.get("RYU_HUB_TYPE", "eventlet") != "eventlet":
        return
    import eventlet
    eventlet.monkey_patch()


_PATCHES = {_TARGET: _patch, _OPENFLOW: _guard_openflow}   # run after the module loads
_BEFORE = {_MANAGER: _green_first}                        # run before it does


class _EventletWsgiHook:
    """A meta path finder (plain class: importlib.abc costs ~15 ms at every start)."""

    def find_spec(self, fullname, path, target=None):
        before, after = _BEFORE.get(fullname), _PATCHES.get(fullname)
        if before is None and after is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            if before is not None:
                before(module)
            load(module)
            if after is not None:
                after(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Make `from eventlet.wsgi import ALREADY_HANDLED` work, guard Ryu's OpenFlow
    channel, green ryu-manager's threads first and drop eventlet's banner; idempotent."""
    warnings.filterwarnings("ignore", message=EVENTLET_BANNER, category=Warning)
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    hooked = [*_PATCHES, *_BEFORE]
    if not all(name in sys.modules for name in hooked) and \
            not any(isinstance(f, _EventletWsgiHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _EventletWsgiHook())
