"""Mininet topologies that run on either OVS datapath.

    sudo mn --custom mininet_topos/topos.py --topo tree,2,2 \
            --controller remote,ip=127.0.0.1,port=6653

Every switch is OpenFlow 1.3 on the datapath `controller.datapath` picks
(`system`, or `netdev` where the kernel has no openvswitch module). On `netdev`
every host interface gets tx checksum offload turned off: the userspace
datapath does not complete partial checksums, so TCP stalls otherwise.
"""
import inspect
import sys
from pathlib import Path

from mininet.node import Host
from mininet.topo import LinearTopo, SingleSwitchTopo
from mininet.topolib import TreeTopo

try:
    from controller.datapath import NETDEV, choose_datapath
except ImportError:  # `mn --custom` execs this file under the system Python, outside the venv
    _here = Path(inspect.currentframe().f_code.co_filename).resolve()
    sys.path.insert(0, str(_here.parents[1]))
    from controller.datapath import NETDEV, choose_datapath


class OffloadOffHost(Host):
    """A host that turns tx checksum offload off on its interfaces when asked."""

    def config(self, tx_checksum_off=False, **params):
        result = super().config(**params)
        if tx_checksum_off:
            for intf in self.intfList():
                if intf.name == "lo":
                    continue
                out, err, code = self.pexec("ethtool", "-K", intf.name, "tx", "off")
                if code != 0:
                    raise RuntimeError(f"ethtool -K {intf.name} tx off failed in {self.name}: "
                                       f"{(err or out).strip()}")
        return result


class DatapathAware:
    """Mixin for Mininet Topo classes: datapath, OpenFlow 1.3 and host class per node."""

    def __init__(self, *args, datapath=None, **params):
        self.datapath = datapath or choose_datapath()
        super().__init__(*args, **params)

    def addSwitch(self, name, **opts):
        opts.setdefault("datapath", "user" if self.datapath == NETDEV else "kernel")
        opts.setdefault("protocols", "OpenFlow13")
        return super().addSwitch(name, **opts)

    def addHost(self, name, **opts):
        opts.setdefault("cls", OffloadOffHost)
        opts.setdefault("tx_checksum_off", self.datapath == NETDEV)
        return super().addHost(name, **opts)


class Single(DatapathAware, SingleSwitchTopo):
    """One switch, k hosts (default 2)."""


class Linear(DatapathAware, LinearTopo):
    """k switches in a line, n hosts on each (default 1)."""


class Tree(DatapathAware, TreeTopo):
    """A tree of switches of the given depth and fanout, hosts at the leaves."""


topos = {"single": Single, "linear": Linear, "tree": Tree}
