"""controller/launcher.py (`sdn-controller`): without --log-config-file the handlers
Ryu's init_log adds write time, level and logger; with one, the file decides.
(Started for real from an installed wheel: tests/integration/test_installed_wheel.py.)"""
import io
import logging
import re
import types

import pytest

from controller import launcher


def fake_ryu_log(log_config_file, stream):
    """ryu.log as the launcher uses it: init_log adds a plain handler to the root."""
    ryu_log = types.SimpleNamespace(CONF=types.SimpleNamespace(log_config_file=log_config_file))
    ryu_log.init_log = lambda: logging.getLogger().addHandler(logging.StreamHandler(stream))
    return ryu_log


@pytest.fixture
def root_handlers():
    before = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = before


def test_without_a_log_config_every_line_has_time_level_and_logger(root_handlers):
    stream = io.StringIO()
    ryu_log = fake_ryu_log(None, stream)
    launcher.format_default_handlers(ryu_log)
    ryu_log.init_log()
    logging.getLogger("controller.test").warning("hello")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING controller\.test: hello\n",
                        stream.getvalue()), stream.getvalue()


def test_a_log_config_file_keeps_its_own_format(root_handlers):
    stream = io.StringIO()
    ryu_log = fake_ryu_log("/etc/logging.ini", stream)
    launcher.format_default_handlers(ryu_log)
    ryu_log.init_log()
    logging.getLogger("controller.test").warning("hello")
    assert stream.getvalue() == "hello\n"
