"""QoS of a port, as the REST API and config file give it and as OVSDB holds it: the
HTB tree (a max rate and queues with guaranteed rates) and ingress policing.

Rates are bit/s and bursts bits everywhere in here ("10M", "500k" are parsed at the
door); OVSDB's kbit/s appear only at the edges (ovsdb_queue_configs, ovsdb_policing).
"""
import math
import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from flows.body import only_keys

MAX_QUEUE_ID = 1023        # keeps the tc leaf handles (0x2000 + id) distinct from 1:
HTB_PRIORITIES = range(0, 8)   # HTB class prio: 0 is served first

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:bit|bps|b)?(?:/s)?\s*$", re.IGNORECASE)
_SCALE = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9}


def parse_rate(value, what: str, allow_zero=False) -> int:
    """A rate (bit/s) or burst (bits): an int/float or a string like "10M", "1.5G", "500k"."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} must be a number of bits (e.g. 10000000 or \"10M\"), "
                         f"not {value!r}")
    if isinstance(value, str):
        found = _RATE.match(value)
        if not found:
            raise ValueError(f"{what} must be a number of bits (e.g. 10000000 or \"10M\"), "
                             f"not {value!r}")
        value = float(found.group(1)) * _SCALE[found.group(2).lower()]
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    if value == 0 and not allow_zero:
        raise ValueError(f"{what} must be above 0")
    return int(round(value))


# --- the HTB tree of a port -------------------------------------------------------------

@dataclass(frozen=True)
class Queue:
    queue_id: int
    min_rate: int
    max_rate: int
    burst: Optional[int] = None
    priority: Optional[int] = None


@dataclass(frozen=True)
class Policing:
    """A rate limit: ingress policing of a port, or a rule's meter."""
    rate: int
    burst: int


@dataclass(frozen=True)
class PortQos:
    max_rate: Optional[int] = None           # None: no HTB tree on this port
    queues: Tuple[Queue, ...] = ()
    policing: Optional[Policing] = None

    def queue(self, queue_id) -> Optional[Queue]:
        return next((q for q in self.queues if q.queue_id == queue_id), None)

    @property
    def queue_ids(self):
        return [q.queue_id for q in self.queues]


def as_int(value, what, low, high):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer {low}..{high}, not {value!r}")
    return value


def policing_from_dict(body, what) -> Policing:
    only_keys(body, ("rate", "burst"), what)
    if "rate" not in body:
        raise ValueError(f"{what} needs a rate")
    rate = parse_rate(body["rate"], f"{what} rate")
    # Default burst: 10 % of a second's worth, at least ten full-size frames.
    burst = parse_rate(body.get("burst", max(rate // 10, 10 * 1500 * 8)), f"{what} burst")
    return Policing(rate, burst)


def _queue_from_dict(queue_id, body, port_max) -> Queue:
    where = f"queue {queue_id}"
    only_keys(body, ("min_rate", "max_rate", "burst", "priority"), where)
    if "min_rate" not in body:
        raise ValueError(f"{where} needs a min_rate (the rate it is guaranteed)")
    min_rate = parse_rate(body["min_rate"], f"{where} min_rate", allow_zero=True)
    max_rate = parse_rate(body.get("max_rate", port_max), f"{where} max_rate")
    if min_rate > max_rate:
        raise ValueError(f"{where}: min_rate {min_rate} is above its max_rate {max_rate}")
    if max_rate > port_max:
        raise ValueError(f"{where}: max_rate {max_rate} is above the port's max_rate {port_max}")
    burst = parse_rate(body["burst"], f"{where} burst") if "burst" in body else None
    priority = None
    if "priority" in body:
        priority = as_int(body["priority"], f"{where} priority", HTB_PRIORITIES.start,
                        HTB_PRIORITIES.stop - 1)
    return Queue(queue_id, min_rate, max_rate, burst, priority)


def port_qos_from_dict(body) -> PortQos:
    """Validate a port's QoS as the REST API and config file give it:
    {"max_rate": "10M", "queues": {"0": {"min_rate": "3M", "max_rate": "10M"}, ...},
     "ingress_policing": {"rate": "5M", "burst": "500k"}}"""
    only_keys(body, ("max_rate", "queues", "ingress_policing"), "port QoS")
    if not any(k in body for k in ("max_rate", "queues", "ingress_policing")):
        raise ValueError("port QoS needs max_rate and queues (an HTB tree), "
                         "ingress_policing, or both")
    max_rate, queues = None, ()
    if "max_rate" in body or "queues" in body:
        if "max_rate" not in body:
            raise ValueError("queues need the port's max_rate")
        max_rate = parse_rate(body["max_rate"], "max_rate")
        raw = body.get("queues")
        if not isinstance(raw, dict) or not raw:
            raise ValueError('queues must be a non-empty object of queue id -> settings, '
                             'e.g. {"0": {"min_rate": "3M"}}')
        ids = [as_int(k, "a queue id", 0, MAX_QUEUE_ID) for k in raw]
        if len(set(ids)) != len(ids):
            raise ValueError(f"queue ids repeat: {sorted(raw)}")
        queues = tuple(sorted((_queue_from_dict(i, v, max_rate) for i, v in zip(ids, raw.values())),
                              key=lambda q: q.queue_id))
        total = sum(q.min_rate for q in queues)
        if total > max_rate:
            raise ValueError(f"the queues' min_rates add up to {total}, above the port's "
                             f"max_rate {max_rate}")
    policing = None
    if body.get("ingress_policing") is not None:
        policing = policing_from_dict(body["ingress_policing"], "ingress_policing")
    return PortQos(max_rate, queues, policing)


def port_qos_to_dict(qos: PortQos) -> dict:
    out = {}
    if qos.max_rate is not None:
        out["max_rate"] = qos.max_rate
        out["queues"] = {str(q.queue_id): {k: v for k, v in (
            ("min_rate", q.min_rate), ("max_rate", q.max_rate), ("burst", q.burst),
            ("priority", q.priority)) if v is not None} for q in qos.queues}
    if qos.policing is not None:
        out["ingress_policing"] = {"rate": qos.policing.rate, "burst": qos.policing.burst}
    return out


def ovsdb_queue_configs(qos: PortQos) -> Dict[int, Dict[str, str]]:
    """Queue id -> the Queue row's other_config, as `ovs-vsctl create queue` takes it."""
    configs = {}
    for q in qos.queues:
        config = {"min-rate": str(q.min_rate), "max-rate": str(q.max_rate)}
        if q.burst is not None:
            config["burst"] = str(q.burst)
        if q.priority is not None:
            config["priority"] = str(q.priority)
        configs[q.queue_id] = config
    return configs


def ovsdb_policing(policing: Optional[Policing]) -> Tuple[int, int]:
    """Interface ingress_policing_rate/_burst (kbit/s, kbit); (0, 0) switches it off."""
    if policing is None:
        return 0, 0
    return -(-policing.rate // 1000), -(-policing.burst // 1000)
