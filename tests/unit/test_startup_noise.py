"""Issue 19's start-up noise, in a Python of the venv started as a user would (no
pytest marker, no warning options): eventlet's deprecation banner is gone and no other
warning with it, and ryu-manager's threads are greened before any lock exists, so
eventlet has no "RLock(s) were not greened" to report (controller/ryu_compat.py)."""
import os
import subprocess
import sys

from controller import ryu_compat

BANNER = "Eventlet is deprecated"
RLOCK = "RLock(s) were not greened"


def python(code):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_CURRENT_TEST", "PYTHONWARNINGS")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env)


def test_eventlets_banner_is_gone_and_other_warnings_stay():
    result = python("import warnings, eventlet\n"
                    "warnings.warn('a warning of ours', UserWarning)\n"
                    "warnings.warn('a future change', FutureWarning)")
    assert result.returncode == 0, result.stderr
    assert BANNER not in result.stderr
    assert "UserWarning: a warning of ours" in result.stderr
    assert "FutureWarning: a future change" in result.stderr


def test_the_filter_knows_the_banner_by_its_text():
    import re
    banner = "\nEventlet is deprecated. It is currently being maintained in bugfix mode"
    assert re.match(ryu_compat.EVENTLET_BANNER, banner)
    assert not re.match(ryu_compat.EVENTLET_BANNER, "Using fork() is a bad idea")


def test_ryu_managers_threads_are_green_before_its_imports_make_locks():
    # what ryu-manager's main() does after its imports: patch threading
    result = python("import ryu.cmd.manager\n"
                    "import threading, eventlet.patcher\n"
                    "from ryu.lib import hub\n"
                    "assert eventlet.patcher.is_monkey_patched('thread')\n"
                    "hub.patch(thread=True)\n"
                    "print(type(threading.RLock()).__module__)")
    assert result.returncode == 0, result.stderr
    assert RLOCK not in result.stderr and BANNER not in result.stderr
    assert result.stdout.split() == ["threading"]   # the greened Python RLock


def test_the_debugger_option_leaves_threads_alone_as_ryu_does():
    code = ("import sys; sys.argv = ['ryu-manager', '--enable-debugger']\n"
            "import ryu.cmd.manager, eventlet.patcher\n"
            "print(eventlet.patcher.is_monkey_patched('thread'))")
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]
