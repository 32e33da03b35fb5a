"""The QoS app's decisions (apps/qos.py carries them out): what a switch's flows and
meters should be, and which OVSDB writes turn the QoS and policing rows there into
what the config and REST want.

OVSDB rows are rewritten only where they differ: a rewrite makes OVS rebuild the
port's tc tree (and drop what is queued). Pure: what OVSDB holds is read through the
callables passed in, only for the ports where the answer matters, and the writes come
back as values, in the order to make them.
"""
from dataclasses import dataclass
from typing import Callable, Collection, Dict, Iterable, List, Mapping, Optional

from flows import qos


def desired_flows(ports: Dict[int, qos.PortQos], rules: Iterable, tc_classified: bool) -> List:
    """Everything of this app's own on the switch (framed with the pipeline's misses and
    the canary by controller/desired_state.py); on the userspace datapath (tc
    classification) policing is done by meters."""
    return qos.switch_plan(ports, rules, tc_classified)


@dataclass(frozen=True)
class SetQos:
    """Give the port a linux-htb QoS with these queues ({id: Queue other_config}); with
    no max_rate, detach ours from the port and destroy its rows."""
    port: str
    max_rate: Optional[int] = None
    queues: Optional[Dict[int, Dict[str, str]]] = None

    @property
    def clears(self) -> bool:
        return self.max_rate is None


@dataclass(frozen=True)
class SetPolicing:
    """The interface's ingress policer (kbit/s, kbit; 0 switches it off)."""
    interface: str
    rate: int
    burst: int


def ovsdb_changes(ports: Mapping[int, qos.PortQos], names: Mapping[int, str],
                  ours: Collection[str], policed: Collection[str],
                  read_qos: Callable[[str], object], read_policing: Callable[[str], tuple],
                  only: Optional[int] = None, rebuild: Collection[int] = ()) -> List:
    """The writes that give the switch's ports (`names`: number -> name; or port `only`)
    the QoS `ports` wants. `ours`: ports whose QoS this app created; `policed`: interfaces
    whose policer it set; `read_qos(name)` / `read_policing(name)`: what OVSDB holds
    (controller/ovsdb.py's read_port_qos / read_ingress_policing). Ports in `rebuild`
    get their QoS removed and created again, so OVS builds a fresh tc tree."""
    out = []
    for number, name in sorted(names.items()):
        if only is not None and number != only:
            continue
        want = ports.get(number)
        if want is not None and want.max_rate is not None:
            queues = qos.ovsdb_queue_configs(want)
            wanted = (qos.APP, {"max-rate": str(want.max_rate)}, queues)
            if number in rebuild and name in ours:
                out.append(SetQos(name))   # OVS deletes whatever tree is there
            if number in rebuild or read_qos(name) != wanted:
                out.append(SetQos(name, want.max_rate, queues))
        elif name in ours:
            out.append(SetQos(name))
        rate, burst = qos.ovsdb_policing(want.policing if want else None)
        if (rate or name in policed) and read_policing(name) != (rate, burst):
            out.append(SetPolicing(name, rate, burst))
    return out


def fresh_ovsdb(ports: Mapping[int, qos.PortQos], names: Mapping[int, str]) -> List:
    """The writes a switch with none of our rows gets (what `sdn plan` shows)."""
    return ovsdb_changes(ports, names, (), (), read_qos=lambda name: None,
                         read_policing=lambda name: (0, 0))


def describe(change) -> str:
    if isinstance(change, SetQos) and change.clears:
        return f"Port {change.port}: no QoS"
    if isinstance(change, SetQos):
        queues = ", ".join(f"{q}: {c}" for q, c in sorted(change.queues.items()))
        return f"Port {change.port}: QoS linux-htb max-rate={change.max_rate}, queues {{{queues}}}"
    if isinstance(change, SetPolicing):
        return (f"Interface {change.interface}: ingress_policing_rate={change.rate} "
                f"burst={change.burst}")
    return repr(change)
