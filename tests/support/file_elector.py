"""A test-only elector for integration tests with several ryu-managers on one bridge:
the test writes who is master of each switch in a JSON file, every node polls it.

    SDN_TEST_ELECTOR=tests.support.file_elector:FileElector
    SDN_TEST_ELECTOR_FILE=/tmp/.../masters.json   {"<dpid hex>": ["<node>", <generation>]}
    SDN_NODE=<node>                               this node's name

A switch whose entry names this node (with a generation above any it took before) is
won; one that names another node, or none, is lost. Not for production: the etcd
elector (issue 18) replaces it.
"""
import json
import logging
import os
import pathlib

from ryu.lib import hub

from controller import mastership
from flows import dpid as dpids

LOG = logging.getLogger(__name__)
POLL_S = 0.1
REPO = pathlib.Path(__file__).resolve().parents[2]


def environment(base: dict, node: str, masters_file) -> dict:
    """`base` (a ryu-manager's environment) with this elector named for node `node`.
    ryu-manager imports the elector from tests/, which is not installed: the
    repository goes first on its PYTHONPATH (a CI run sets none)."""
    path = [str(REPO)] + [p for p in base.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(base, SDN_NODE=node, SDN_TEST_ELECTOR_FILE=str(masters_file),
                SDN_TEST_ELECTOR="tests.support.file_elector:FileElector",
                PYTHONPATH=os.pathsep.join(path))


class FileElector(mastership.Elector):
    def __init__(self):
        self.path = os.environ["SDN_TEST_ELECTOR_FILE"]
        self.node = os.environ["SDN_NODE"]
        self._contending, self._held = set(), {}   # dpid -> generation we won at
        self._generations = {}
        self._poller = None

    def start(self, won, lost):
        super().start(won, lost)
        self._poller = hub.spawn(self._poll)

    def contend(self, dpid):
        self._contending.add(dpid)
        if dpid in self._held:   # a reconnect while ours: announce it again
            self._won(dpid, self._held[dpid])
            return
        self._check()

    def release(self, dpid):
        self._contending.discard(dpid)
        self._held.pop(dpid, None)

    def generation(self, dpid):
        return self._generations.get(dpid, 0)

    def describe(self):
        return {"elector": "FileElector", "node": self.node}

    def _read(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                return {dpids.parse(k): (v[0], int(v[1])) for k, v in json.load(f).items()}
        except (OSError, ValueError) as err:
            LOG.warning("file elector: %s: %s", self.path, err)
            return None

    def _poll(self):
        while True:
            hub.sleep(POLL_S)
            self._check()

    def _check(self):
        masters = self._read()
        if masters is None:
            return
        for dpid, (_, generation) in masters.items():
            self._generations[dpid] = generation
        for dpid in list(self._contending):
            node, generation = masters.get(dpid, (None, 0))
            held = self._held.get(dpid)
            if node == self.node and (held is None or generation > held):
                self._held[dpid] = generation
                self._won(dpid, generation)
            elif node != self.node and held is not None:
                del self._held[dpid]
                self._lost(dpid)
