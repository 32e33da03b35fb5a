"""What the controller learns of a switch from messages as Ryu's parser reads them:
the OpenFlow errors it sends (sdn_of_errors_total, by type and code) and its bridge's
name (the LOCAL port's, in a port-description reply: the `dp_name` label of the
per-switch metrics, controller/metrics.py).

Hooked into Ryu's parser table, as controller/fastparse.py is for packet-ins: every
message is parsed exactly once (controller/ofguard.py `handle`), whichever apps then
observe it, so each error is counted once however many apps log it. Error names are
the OpenFlow 1.3 constants' (OFPET_BAD_REQUEST, OFPBRC_BAD_TYPE); a type or code the
spec does not define is "unknown", so a switch cannot grow the label set.
"""
from ryu.ofproto import ofproto_v1_3 as ofp
from ryu.ofproto import ofproto_v1_3_parser as parser

from controller import metrics

# error type -> the prefix of its codes' names
_CODE_PREFIXES = {
    ofp.OFPET_HELLO_FAILED: "OFPHFC_", ofp.OFPET_BAD_REQUEST: "OFPBRC_",
    ofp.OFPET_BAD_ACTION: "OFPBAC_", ofp.OFPET_BAD_INSTRUCTION: "OFPBIC_",
    ofp.OFPET_BAD_MATCH: "OFPBMC_", ofp.OFPET_FLOW_MOD_FAILED: "OFPFMFC_",
    ofp.OFPET_GROUP_MOD_FAILED: "OFPGMFC_", ofp.OFPET_PORT_MOD_FAILED: "OFPPMFC_",
    ofp.OFPET_TABLE_MOD_FAILED: "OFPTMFC_", ofp.OFPET_QUEUE_OP_FAILED: "OFPQOFC_",
    ofp.OFPET_SWITCH_CONFIG_FAILED: "OFPSCFC_", ofp.OFPET_ROLE_REQUEST_FAILED: "OFPRRFC_",
    ofp.OFPET_METER_MOD_FAILED: "OFPMMFC_", ofp.OFPET_TABLE_FEATURES_FAILED: "OFPTFFC_",
}
UNKNOWN = "unknown"
EXPERIMENTER = "experimenter"   # the code of an experimenter error is the experimenter's


def _constants(prefix):
    return {value: name for name, value in vars(ofp).items() if name.startswith(prefix)}


_TYPE_NAMES = _constants("OFPET_")
_CODE_NAMES = {error_type: _constants(prefix) for error_type, prefix in _CODE_PREFIXES.items()}


def error_names(error_type: int, code: int):
    """(type name, code name) of an OpenFlow 1.3 error, "unknown" where undefined."""
    if error_type == ofp.OFPET_EXPERIMENTER:
        return _TYPE_NAMES[error_type], EXPERIMENTER
    codes = _CODE_NAMES.get(error_type)
    if codes is None:
        return UNKNOWN, UNKNOWN
    return _TYPE_NAMES[error_type], codes.get(code, UNKNOWN)


def counted_error(datapath, version, msg_type, msg_len, xid, buf):
    """Ryu's error parser, counted per switch, type and code."""
    msg = _original[ofp.OFPT_ERROR](datapath, version, msg_type, msg_len, xid, buf)
    metrics.OF_ERRORS.inc(datapath.id or 0, *error_names(msg.type, getattr(msg, "code", None)))
    return msg


def named_multipart(datapath, version, msg_type, msg_len, xid, buf):
    """Ryu's multipart reply parser; a port-description reply's LOCAL port names the
    switch."""
    msg = _original[ofp.OFPT_MULTIPART_REPLY](datapath, version, msg_type, msg_len, xid, buf)
    if isinstance(msg, parser.OFPPortDescStatsReply) and datapath.id is not None:
        for port in msg.body:
            if port.port_no == ofp.OFPP_LOCAL:
                name = port.name
                metrics.name_switch(datapath.id, name.decode("utf-8", "replace")
                                    if isinstance(name, bytes) else str(name))
    return msg


_original = {}


def install():
    """Count errors and learn names in this process's OpenFlow 1.3 parser (idempotent)."""
    if _original:
        return
    for msg_type, counted in ((ofp.OFPT_ERROR, counted_error),
                              (ofp.OFPT_MULTIPART_REPLY, named_multipart)):
        _original[msg_type] = parser._MSG_PARSERS[msg_type]
        parser._MSG_PARSERS[msg_type] = counted
