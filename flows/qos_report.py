"""What the QoS app answers over REST, as values: a port's QoS with how it is carried
out, the per-queue counters and rates of two samples, and the REST-made document with
one change applied. Pure (flows/): the app (apps/qos.py) feeds it what the switch and
OVSDB said."""
from typing import Dict, Mapping, Optional, Tuple

from flows.qos_model import PortQos, port_qos_to_dict

Counters = Mapping[int, Tuple[int, int, int]]   # queue -> (tx bytes, tx packets, tx errors)


def with_changes(overrides: dict, dpid: int, key: str, changes: Mapping) -> dict:
    """A copy of the REST document ({dpid: {"ports"|"rules": {ref: body or None}}}) with
    `changes` ({port or rule id: body or None}) under `dpid`'s `key`; the original stays
    as it was, so a change that fails leaves nothing behind."""
    trial = {d: {k: dict(v) for k, v in mine.items()} for d, mine in overrides.items()}
    mine = trial.setdefault(dpid, {}).setdefault(key, {})
    mine.update({str(ref): body for ref, body in changes.items()})
    return trial


def port_report(want: Optional[PortQos], dpid: str, number: int, name: str,
                queue_mechanism: str, policing_mechanism: str, tc_problems=()) -> dict:
    out = dict(port_qos_to_dict(want) if want else {}, dpid=dpid, port=number, name=name,
               configured=want is not None)
    if want is not None and want.queues:
        out["queue_mechanism"] = queue_mechanism
        out["tc_problems"] = list(tc_problems)
    if want is not None and want.policing:
        out["policing_mechanism"] = policing_mechanism
    return out


def queue_report(want: PortQos, counters: Counters, first: Tuple[float, Counters],
                 last: Tuple[float, Counters]) -> Tuple[Dict[str, dict], float]:
    """({queue id as text: counters, rate over the two samples, configured rates},
    seconds between the samples). A queue without an earlier sample has no rate."""
    (t0, before), (t1, after) = first, last
    queues = {}
    for queue_id, (tx_bytes, tx_packets, tx_errors) in sorted(counters.items()):
        rate = None
        if t1 > t0 and queue_id in before:
            rate = round((after[queue_id][0] - before[queue_id][0]) * 8 / (t1 - t0))
        configured = want.queue(queue_id)
        queues[str(queue_id)] = {
            "tx_bytes": tx_bytes, "tx_packets": tx_packets, "tx_errors": tx_errors,
            "rate_bps": rate, "min_rate": configured and configured.min_rate,
            "max_rate": configured and configured.max_rate}
    return queues, round(t1 - t0, 2)
