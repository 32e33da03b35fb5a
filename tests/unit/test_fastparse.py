"""controller/fastparse.py reads packet-ins exactly as Ryu's own parser does."""
import random

import pytest
from ryu.ofproto import ofproto_v1_3 as ofp, ofproto_v1_3_parser as parser
from ryu.ofproto.ofproto_parser import msg as ryu_msg

from controller import fastparse
from tests.support.wire import DP
from tests.support.packets import oxm, packet_in


CASES = {
    "in_port": oxm(0, 3, 4),
    "in_port+metadata": oxm(0, 0xFFFFFFFD, 4) + oxm(2, 2**63 + 5, 8),
    "tunnel_id": oxm(0, 7, 4) + oxm(38, 0x1234, 8),
    "masked": oxm(0, 1, 4) + oxm(2, 5, 8, mask=0xFF),          # -> Ryu's parser
    "nxm reg0": oxm(0, 1, 4) + oxm(0, 9, 4, klass=0x0001),     # -> Ryu's parser
    "eth_type": oxm(0, 1, 4) + oxm(5, 0x0800, 2),              # -> Ryu's parser
    "empty": b"",
}


def both(buf):
    fast = fastparse.parse_packet_in(DP, 4, ofp.OFPT_PACKET_IN, len(buf), 77, bytearray(buf))
    parser._MSG_PARSERS[ofp.OFPT_PACKET_IN] = fastparse._ryu_parser
    stock = ryu_msg(DP, 4, ofp.OFPT_PACKET_IN, len(buf), 77, bytearray(buf))
    return fast, stock


@pytest.mark.parametrize("name", list(CASES))
def test_same_as_ryus_parser(name):
    for data, total in ((b"\x02" * 60, None), (b"\x02" * 64, 60)):  # with trailing padding
        fast, stock = both(packet_in(CASES[name], data, total))
        for attr in ("buffer_id", "total_len", "reason", "table_id", "cookie", "data", "xid"):
            assert getattr(fast, attr) == getattr(stock, attr), attr
        assert fast.match.to_jsondict() == stock.match.to_jsondict()
        assert fast.match.length == stock.match.length
        assert dict(fast.match.items()) == dict(stock.match.items())


def test_garbage_never_raises_other_than_ryu_does():
    rng = random.Random(5)
    good = packet_in(CASES["in_port+metadata"])
    for _ in range(2000):
        buf = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(8, len(buf))] = rng.randrange(256)
        try:
            fastparse.parse_packet_in(DP, 4, ofp.OFPT_PACKET_IN, len(buf), 1, buf)
        except Exception as err:  # what Ryu's own parser raises on the same bytes
            with pytest.raises(type(err)):
                fastparse._ryu_parser(DP, 4, ofp.OFPT_PACKET_IN, len(buf), 1, buf)


def test_install_puts_it_in_ryus_table():
    try:
        fastparse.install()
        assert parser._MSG_PARSERS[ofp.OFPT_PACKET_IN] is fastparse.counted_packet_in
    finally:
        parser._MSG_PARSERS[ofp.OFPT_PACKET_IN] = fastparse._ryu_parser


def test_its_match_still_serializes_like_ryus():
    fast, stock = both(packet_in(CASES["in_port+metadata"]))
    fast_buf, stock_buf = bytearray(), bytearray()
    fast.match.serialize(fast_buf, 0)
    stock.match.serialize(stock_buf, 0)
    assert fast_buf == stock_buf and str(fast.match) == str(stock.match)
    assert fast.match["in_port"] == 0xFFFFFFFD and "metadata" in fast.match
