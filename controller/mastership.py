"""Who is master of each switch: the election behind an interface (issue 18).

An `Elector` decides, per switch, which node of a cluster may write to it. The runtime
(controller/runtime.py) contends for every switch that connects and releases it when
the connection ends; the elector calls back `won(dpid, generation_id)` when this node
becomes the switch's master and `lost(dpid)` when it is master no more. The
generation_id of a win is cluster-monotonic (a later win, by any node, has a larger
one): it goes into OFPRoleRequest MASTER, and Open vSwitch refuses a request whose
generation is older than the last it saw (STALE), so a paused old master that wakes up
cannot take the switch back.

`SingleNode` (the default) wins every switch at once: one controller, no role
protocol, behaves as before clusters existed. `CLUSTERED` says which is which: the
runtime speaks the role protocol only to a clustered elector.

controller/runtime.py chooses from the config file: a `cluster` section makes this node
one of an etcd-backed cluster (controller/etcd_elector.py), none a single node. A test
elector (tests/support/file_elector.py) can be named with SDN_TEST_ELECTOR
("module:Class") instead; it is for tests only.
"""
import importlib
import itertools
import logging
import os

LOG = logging.getLogger(__name__)
TEST_ELECTOR_ENV = "SDN_TEST_ELECTOR"


class Elector:
    """The interface. `start` is called once, by the runtime, before any `contend`."""
    CLUSTERED = True

    def start(self, won, lost) -> None:
        """won(dpid, generation_id) / lost(dpid): called in any greenlet, possibly from
        inside `contend` (a decision that is already known)."""
        self._won, self._lost = won, lost

    def contend(self, dpid: int) -> None:
        """This node sees switch `dpid` (on a new connection): it would like to be its
        master. When it already is, `won` is called again with the generation it holds
        (the new connection needs its MASTER request)."""
        raise NotImplementedError

    def release(self, dpid: int) -> None:
        """This node does not want switch `dpid` any more (it went away, or the switch
        refused us): give it up, with no `lost` callback."""
        raise NotImplementedError

    def generation(self, dpid: int) -> int:
        """The newest generation_id this node knows of for `dpid` (0: none yet): what a
        slave's ROLE_REQUEST carries, since OVS checks SLAVE requests for staleness too."""
        return 0

    def describe(self) -> dict:
        """For REST: this node's view of the election (no secrets)."""
        return {"elector": type(self).__name__}


class SingleNode(Elector):
    """One controller: it is master of every switch it meets, at once."""
    CLUSTERED = False

    def __init__(self):
        self._counter = itertools.count(1)
        self._generations = {}

    def contend(self, dpid):
        self._generations[dpid] = next(self._counter)
        self._won(dpid, self._generations[dpid])

    def release(self, dpid):
        self._generations.pop(dpid, None)

    def generation(self, dpid):
        return self._generations.get(dpid, 0)


def from_environment() -> Elector:
    """SingleNode, unless a test names its own elector in SDN_TEST_ELECTOR. A bad name
    stops ryu-manager with the reason (a cluster node must not start as single)."""
    name = os.environ.get(TEST_ELECTOR_ENV)
    if not name:
        return SingleNode()
    module, _, cls = name.partition(":")
    try:
        elector = getattr(importlib.import_module(module), cls)()
    except (ImportError, AttributeError, ValueError) as err:
        raise SystemExit(f"{TEST_ELECTOR_ENV}={name!r}: {err}") from None
    LOG.info("mastership: elector %s", name)
    return elector

