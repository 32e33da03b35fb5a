"""A fake switch's flow table, in struct only: it keeps the flow-mods it is sent and
answers flow-stats requests from them, as OVS would.

Without it a fake switch answers every flow-stats request with no entries, so to the
controller's canary watch (controller/southbound.py) every fake switch has just lost
its entries: each app re-installs them on every switch every poll, and an "idle"
measurement measures that repair loop instead of the controller at rest.

OpenFlow 1.3 semantics for what our apps send (as tests/support/fakeswitch.py, which
does the same with Ryu's parser objects for unit tests): an add replaces the entry of
the same table, priority and match; a strict delete needs all three; other deletes
take every entry of the cookie/mask and table whose match has all the delete's fields.
Group and meter references are not followed.
"""
import struct

_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")  # cookie .. flags, after the 8-byte header
_STATS_REQUEST = struct.Struct("!HH4xB3xII4xQQ")  # multipart header + flow-stats request
_STATS_ENTRY = struct.Struct("!HBxIIHHHH4xQQQ")
_MULTIPART_REPLY, _OFPMP_FLOW, _REPLY_MORE = 19, 1, 1
_ADD, _MODIFY, _MODIFY_STRICT, _DELETE, _DELETE_STRICT = range(5)
_ALL_TABLES = 0xFF
_MAX_REPLY = 60000   # bytes of entries per reply message (a message holds at most 64 KiB)


def _match(data: bytes, offset: int):
    """(the match's bytes padded to 8, its OXM fields as a frozenset of TLV bytes, end)."""
    length = struct.unpack_from("!H", data, offset + 2)[0]
    end = offset + (length + 7) // 8 * 8
    fields, at = set(), offset + 4
    while at + 4 <= offset + length:
        size = 4 + data[at + 3]
        fields.add(bytes(data[at:at + size]))
        at += size
    return bytes(data[offset:end]), frozenset(fields), end


class FlowTable:
    def __init__(self):
        self.entries = {}  # (table, priority, match fields) -> (stats head values, match, insts)

    def apply(self, body: bytes) -> None:
        """A flow-mod's body (the message without its 8-byte header)."""
        (cookie, mask, table, command, idle, hard, priority, _buffer, _port, _group,
         flags) = _FLOW_MOD.unpack_from(body)
        match, fields, end = _match(body, _FLOW_MOD.size)
        key = (table, priority, fields)
        if command in (_ADD, _MODIFY, _MODIFY_STRICT):
            self.entries[key] = ((table, priority, idle, hard, flags, cookie), match,
                                 bytes(body[end:]))
            return
        for old in [k for k, (head, _, _) in self.entries.items()
                    if (head[5] & mask) == (cookie & mask) and table in (_ALL_TABLES, k[0])
                    and (k == key if command == _DELETE_STRICT else fields <= k[2])]:
            del self.entries[old]

    def stats_replies(self, xid: int, body: bytes):
        """The reply messages (header included) to a flow-stats request's body."""
        _type, _flags, table, _port, _group, cookie, mask = _STATS_REQUEST.unpack_from(body)
        parts, part = [], bytearray()
        for (table_id, priority, idle, hard, flags, entry_cookie), match, insts in \
                self.entries.values():
            if (entry_cookie & mask) != (cookie & mask) or table not in (_ALL_TABLES, table_id):
                continue
            if len(part) > _MAX_REPLY:
                parts.append(part)
                part = bytearray()
            part += _STATS_ENTRY.pack(_STATS_ENTRY.size + len(match) + len(insts), table_id,
                                      0, 0, priority, idle, hard, flags, entry_cookie, 0, 0)
            part += match + insts
        parts.append(part)
        return [struct.pack("!BBHIHH4x", 4, _MULTIPART_REPLY, 16 + len(p), xid, _OFPMP_FLOW,
                            _REPLY_MORE if i < len(parts) - 1 else 0) + p
                for i, p in enumerate(parts)]
