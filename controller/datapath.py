"""Which Open vSwitch datapath to use: the one decision, shared by the harness,
the Mininet topologies and the apps.

`system` (the kernel module) when the kernel has openvswitch, else `netdev`
(OVS's userspace datapath). `SDN_DATAPATH=system|netdev` overrides.

Standard library only: Mininet topologies import this under the system Python.
"""
import os
from pathlib import Path

SYSTEM = "system"
NETDEV = "netdev"
ENV_VAR = "SDN_DATAPATH"


def kernel_has_openvswitch(proc_modules="/proc/modules", sys_module="/sys/module/openvswitch",
                           modules_dir=None):
    """Loaded, built in, or loadable (ovs-ctl start modprobes it)."""
    if Path(sys_module).exists():
        return True
    modules_dir = Path(modules_dir or f"/lib/modules/{os.uname().release}")
    if any(modules_dir.glob("kernel/net/openvswitch/openvswitch.ko*")):
        return True
    try:
        return any(line.split()[0] == "openvswitch"
                   for line in Path(proc_modules).read_text().splitlines() if line.strip())
    except OSError:
        return False


def choose_datapath(environ=None, kernel_check=kernel_has_openvswitch) -> str:
    environ = os.environ if environ is None else environ
    forced = environ.get(ENV_VAR, "").strip()
    if forced:
        if forced not in (SYSTEM, NETDEV):
            raise ValueError(f"{ENV_VAR} must be {SYSTEM!r} or {NETDEV!r}, not {forced!r}")
        return forced
    return SYSTEM if kernel_check() else NETDEV
