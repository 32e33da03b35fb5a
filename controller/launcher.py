"""`sdn-controller`: Ryu's manager with this project's Ryu fix, for any install.

It takes ryu-manager's command line unchanged (apps by module name or file, every
ryu-manager flag: `sdn-controller apps.l2_switch apps.vlan --ofp-tcp-listen-port 6653`).
Two things differ from the stock `ryu-manager`:

- The compatibility fix (controller/ryu_compat.py) is installed here, in-process,
  before Ryu's manager is imported. ryu-manager only works in the venv `make setup`
  builds, whose `.pth` file installs the fix at interpreter start; a plain
  `pip install` of the project has no such file.
- Without --log-config-file every log line carries its time, level and logger name
  (LOG_FORMAT); Ryu's own default is the bare message, which does not say when
  something happened. With --log-config-file that file decides (etc/logging.ini is
  one), as it does for ryu-manager.
"""
import logging
import sys

from controller import ryu_compat

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def format_default_handlers(ryu_log) -> None:
    """Make `ryu_log.init_log` (ryu/log.py) give the handlers it adds LOG_FORMAT,
    unless a logging config file was named: then the file's formatters stay."""
    init_log = ryu_log.init_log

    def init_log_with_format():
        init_log()
        if ryu_log.CONF.log_config_file:
            return
        formatter = logging.Formatter(LOG_FORMAT)
        for handler in logging.getLogger().handlers:
            if handler.formatter is None:
                handler.setFormatter(formatter)

    ryu_log.init_log = init_log_with_format


def main(argv=None):
    """Run Ryu's manager with `argv` (default: this command's arguments)."""
    ryu_compat.install()
    # imported only now: the fix must be in place first, and the manager first of all
    # Ryu: importing it greens the threads before Ryu's imports make locks (ryu_compat)
    from ryu.cmd import manager
    from ryu import log
    format_default_handlers(log)
    return manager.main(args=sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    sys.exit(main())
