"""The one place that talks to OVSDB: ovsdbapp over `tcp:127.0.0.1:6640`.

`make setup` adds a `ptcp:6640:127.0.0.1` Manager row (localhost only, next to any
managers already configured). Ryu 4.34's own OVSDB client breaks
with current `ovs` libraries (docs/design/architecture.md, "OVSDB"), ovsdbapp is OpenStack's maintained one.
Rows we create carry `external_ids:sdn-owner=<app>`; we only ever change or
remove rows that carry our owner.
"""
import contextlib
import os

from ovsdbapp.backend.ovs_idl import connection, idlutils
from ovsdbapp.schema.open_vswitch import impl_idl
from ryu.lib import hub

from flows.dpid import format as format_dpid

DEFAULT_REMOTE = "tcp:127.0.0.1:6640"
ENV_VAR = "SDN_OVSDB"
OWNER_KEY = "sdn-owner"
POLICING_KEY = "sdn-policing"


_API_CLASSES = {}

# What the controller replicates of OVSDB. The IDL keeps a copy of every column it is
# registered for and ovsdb-server sends every change of them; ovsdbapp's default (all
# tables, all columns) includes what ovs-vswitchd itself rewrites every few seconds for
# every interface on the host (statistics, link and protocol status), so an idle
# controller woke up for each of them: on a host with a few hundred interfaces that
# was several % of a core (issue 19). We register the tables we read or write (and
# ovsdbapp's transaction needs: Open_vSwitch's cur_cfg/next_cfg), every column of them
# but those counters and states, and no column that refers to a table left out.
TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface", "QoS", "Queue", "Flow_Table")
VOLATILE = {
    "Open_vSwitch": {"statistics"},
    "Bridge": {"status", "rstp_status"},
    "Port": {"statistics", "status", "rstp_statistics", "rstp_status", "bond_active_slave"},
    "Interface": {"statistics", "status", "link_state", "link_resets", "link_speed",
                  "duplex", "mtu", "admin_state", "ifindex", "lacp_current", "bfd_status",
                  "cfm_fault", "cfm_fault_status", "cfm_flap_count", "cfm_health",
                  "cfm_remote_mpids", "cfm_remote_opstate"},
}


def _refers_outside(column) -> bool:
    """Whether a column (its schema JSON) holds references to a table not in TABLES."""
    kind = column["type"]
    parts = [kind.get("key"), kind.get("value")] if isinstance(kind, dict) else []
    return any(isinstance(part, dict) and part.get("refTable", TABLES[0]) not in TABLES
               for part in parts)


def replicated_columns(schema_json):
    """{table: [column, ...]} of `schema_json` (the Open_vSwitch schema as the server
    sends it) that the controller's IDL registers (see TABLES above)."""
    return {name: sorted(column for column, spec in schema_json["tables"][name]["columns"].items()
                         if column not in VOLATILE.get(name, ()) and not _refers_outside(spec))
            for name in TABLES}


def _idl(remote):
    helper = idlutils.get_schema_helper(remote, "Open_vSwitch")
    for table, columns in replicated_columns(helper.schema_json).items():
        helper.register_columns(table, columns)
    return connection.OvsdbIdl(remote, helper)


def _api_class(remote):
    """ovsdbapp keeps one connection per Backend *class* (the first one made wins);
    a subclass per remote lets one process talk to several OVSDB servers (the
    overlay's hypervisors), while apps using the same remote share a connection."""
    if remote not in _API_CLASSES:
        _API_CLASSES[remote] = type("OvsdbIdl", (impl_idl.OvsdbIdl,),
                                    {"_ovsdb_connection": None})
    return _API_CLASSES[remote]


class OvsdbError(RuntimeError):
    pass


class OvsdbConflict(OvsdbError):
    """A row we would change belongs to someone else."""


class Ovsdb:
    def __init__(self, remote=None, timeout=5):
        self.remote = remote or os.environ.get(ENV_VAR, DEFAULT_REMOTE)
        self.timeout = timeout
        self._api = None
        # one connect for every green thread that asks at once: 100 switches arriving
        # together made 100 schema fetches and IDLs (seconds of CPU, JSON in Python)
        self._connecting = hub.BoundedSemaphore(1)

    def api(self):
        if self._api is None:
            with self._connecting:
                if self._api is None:
                    self._api = self._connect()
        return self._api

    def _connect(self):
        try:
            idl = _idl(self.remote)
            conn = connection.Connection(idl=idl, timeout=self.timeout)
            return _api_class(self.remote)(conn)
        # ovsdbapp reports an unreachable server as a bare Exception ("Could not
        # retrieve schema"); this is the boundary where it becomes our error.
        except Exception as err:  # noqa: BLE001 (see above)
            raise OvsdbError(f"cannot reach OVSDB at {self.remote} ({err}); "
                             f"enable it with: ovs-vsctl set-manager "
                             f"p{self.remote}") from None

    def _bridge_column(self, dpid: int, column: str):
        """`column` of the Bridge row of datapath `dpid`; OvsdbError when there is none."""
        rows = self.api().db_find("Bridge", ("datapath_id", "=", format_dpid(dpid)),
                                  columns=[column]).execute(check_error=True)
        if not rows:
            raise OvsdbError(f"no bridge with datapath id {format_dpid(dpid)} in OVSDB at "
                             f"{self.remote}")
        return rows[0][column]

    def bridge_of(self, dpid: int) -> str:
        return self._bridge_column(dpid, "name")

    def datapath_type(self, dpid: int) -> str:
        """"netdev" (userspace) or "system" (kernel; OVSDB's empty default)."""
        return self._bridge_column(dpid, "datapath_type") or "system"

    # --- QoS: HTB trees (QoS + Queue rows) and ingress policing ----------------------

    def set_port_qos(self, port: str, max_rate: int, queues, owner: str):
        """Give `port` a linux-htb QoS with `queues` ({id: Queue other_config}), in one
        transaction that also destroys the QoS and Queue rows we had there (QoS and
        Queue are root tables: OVSDB never garbage-collects them)."""
        api = self.api()
        old = self._owned_qos(port, owner)
        with api.transaction(check_error=True) as txn:
            rows = {qid: txn.add(api.db_create("Queue", other_config=config,
                                               external_ids={OWNER_KEY: owner}))
                    for qid, config in queues.items()}
            qos = txn.add(api.db_create("QoS", type="linux-htb",
                                        other_config={"max-rate": str(max_rate)},
                                        queues=rows, external_ids={OWNER_KEY: owner}))
            txn.add(api.db_set("Port", port, ("qos", qos)))
            self._destroy(txn, old)

    def clear_port_qos(self, port: str, owner: str):
        """Detach our QoS from `port` and destroy its QoS and Queue rows."""
        api = self.api()
        old = self._owned_qos(port, owner)
        if old is None:
            return
        with api.transaction(check_error=True) as txn:
            txn.add(api.db_clear("Port", port, "qos"))
            self._destroy(txn, old)

    def port_qos_uuid(self, port: str):
        rows = self.api().db_find("Port", ("name", "=", port),
                                  columns=["qos"]).execute(check_error=True)
        if not rows:
            raise OvsdbError(f"no port {port!r} in OVSDB at {self.remote}")
        return rows[0]["qos"] or None

    def read_port_qos(self, port: str):
        """What OVSDB holds for `port`: None, or (owner, QoS other_config, {queue id:
        Queue other_config}) so an app can skip rewriting rows that are already right
        (rewriting makes OVS rebuild the tc tree)."""
        uuid = self.port_qos_uuid(port)
        if uuid is None:
            return None
        rows = self.api().db_find("QoS", ("_uuid", "=", uuid),
                                  columns=["queues", "other_config", "external_ids"]
                                  ).execute(check_error=True)
        if not rows:
            return None
        row = rows[0]
        return (row["external_ids"].get(OWNER_KEY), dict(row["other_config"]),
                {qid: dict(queue.other_config) for qid, queue in row["queues"].items()})

    # ovsdbapp matches a map condition with "=" when the row holds those keys (not exact)
    def owned_rows(self, owner: str):
        """{table: [uuid]} of the QoS and Queue rows `owner` created (to find orphans)."""
        api = self.api()
        return {table: [row["_uuid"] for row in api.db_find(
                    table, ("external_ids", "=", {OWNER_KEY: owner}),
                    columns=["_uuid"]).execute(check_error=True)]
                for table in ("QoS", "Queue")}

    def ports_with_qos(self, owner: str):
        """Names of the ports whose QoS `owner` created."""
        api = self.api()
        ours = {row["_uuid"] for row in api.db_find(
            "QoS", ("external_ids", "=", {OWNER_KEY: owner}),
            columns=["_uuid"]).execute(check_error=True)}
        return sorted(row["name"] for row in api.db_list(
            "Port", columns=["name", "qos"]).execute(check_error=True)
            if row["qos"] and row["qos"] in ours) if ours else []

    def destroy_orphans(self, owner: str):
        """Destroy `owner`'s QoS rows no port uses and Queue rows no QoS uses (a
        deleted bridge leaves its ports' QoS behind: root tables are never
        garbage-collected). Returns how many rows went."""
        api = self.api()
        owned = self.owned_rows(owner)
        used_qos = {row["qos"] for row in api.db_list("Port", columns=["qos"]).execute(
            check_error=True) if row["qos"]}
        qos_rows = api.db_list("QoS", columns=["_uuid", "queues"]).execute(check_error=True)
        used_queues = {queue.uuid for row in qos_rows if row["_uuid"] in used_qos
                       for queue in row["queues"].values()}
        orphans = [("QoS", u) for u in owned["QoS"] if u not in used_qos]
        orphans += [("Queue", u) for u in owned["Queue"] if u not in used_queues]
        if orphans:
            with api.transaction(check_error=True) as txn:
                for table, uuid in orphans:
                    txn.add(api.db_destroy(table, uuid))
        return len(orphans)

    def set_ingress_policing(self, interface: str, rate_kbps: int, burst_kb: int, owner: str):
        """OVS's per-interface policer; rate 0 switches it off. The Interface row is
        marked `sdn-policing=<owner>` while the policer is ours."""
        api = self.api()
        with api.transaction(check_error=True) as txn:
            txn.add(api.db_set("Interface", interface, ("ingress_policing_rate", rate_kbps),
                               ("ingress_policing_burst", burst_kb)))
            if rate_kbps:
                txn.add(api.db_set("Interface", interface,
                                   ("external_ids", {POLICING_KEY: owner})))
            else:
                txn.add(api.db_remove("Interface", interface, "external_ids", POLICING_KEY,
                                      if_exists=True))

    def read_ingress_policing(self, interface: str):
        """(rate kbit/s, burst kbit) of an interface's policer."""
        rows = self.api().db_find("Interface", ("name", "=", interface),
                                  columns=["ingress_policing_rate", "ingress_policing_burst"]
                                  ).execute(check_error=True)
        if not rows:
            raise OvsdbError(f"no interface {interface!r} in OVSDB at {self.remote}")
        return rows[0]["ingress_policing_rate"], rows[0]["ingress_policing_burst"]

    def policed_interfaces(self, owner: str):
        """Names of the interfaces whose policer `owner` set."""
        return sorted(row["name"] for row in self.api().db_find(
            "Interface", ("external_ids", "=", {POLICING_KEY: owner}),
            columns=["name"]).execute(check_error=True))

    # --- tunnel ports (the overlay's full mesh) -----------------------------------------

    def set_tunnel_ports(self, bridge: str, wanted, owner: str):
        """Make `owner`'s tunnel ports on `bridge` exactly `wanted` ({port name: (type,
        remote_ip)}, key=flow: the VNI comes from the flows) in one transaction; ports
        already right are left alone. Returns the names added or changed."""
        api = self.api()
        have = {row["name"]: (row["type"], row["options"].get("remote_ip"))
                for row in api.db_find("Interface", ("external_ids", "=", {OWNER_KEY: owner}),
                                       columns=["name", "type", "options"]
                                       ).execute(check_error=True)}
        mine = set(api.list_ports(bridge).execute(check_error=True))
        changed = []
        with api.transaction(check_error=True) as txn:
            for name in sorted((set(have) & mine) - set(wanted)):
                txn.add(api.del_port(name, bridge=bridge, if_exists=True))
            for name, (kind, remote_ip) in sorted(wanted.items()):
                if name in mine and have.get(name) == (kind, remote_ip):
                    continue
                if name in mine and name not in have:
                    raise OvsdbConflict(f"{bridge} has a port {name} we did not create")
                options = {"remote_ip": remote_ip, "key": "flow"}
                if name in mine:
                    txn.add(api.db_set("Interface", name, ("type", kind), ("options", options)))
                else:
                    txn.add(api.add_port(bridge, name, type=kind, options=options,
                                         external_ids={OWNER_KEY: owner}))
                changed.append(name)
        return changed

    def _owned_qos(self, port, owner):
        """(QoS uuid, [Queue uuids]) of our QoS on `port`, None when there is none;
        refuses to touch a QoS someone else created."""
        uuid = self.port_qos_uuid(port)
        if uuid is None:
            return None
        rows = self.api().db_find("QoS", ("_uuid", "=", uuid),
                                  columns=["queues", "external_ids"]).execute(check_error=True)
        if not rows:
            return None
        by = rows[0]["external_ids"].get(OWNER_KEY)
        if by != owner:
            by = by or "someone else (no sdn-owner)"
            raise OvsdbConflict(f"port {port} has a QoS set by {by}; not replacing it "
                                f"(remove it with: ovs-vsctl clear port {port} qos)")
        return uuid, [row.uuid for row in rows[0]["queues"].values()]

    def _destroy(self, txn, owned):
        if owned is None:
            return
        api = self.api()
        qos, queues = owned
        txn.add(api.db_destroy("QoS", qos))
        for queue in queues:
            txn.add(api.db_destroy("Queue", queue))

    # --- bonds: one Port with several Interfaces ---------------------------------------

    def read_bond(self, name: str):
        """None, or {owner, members (sorted), bond_mode, lacp, other_config} of port `name`."""
        rows = self.api().db_find("Port", ("name", "=", name),
                                  columns=["interfaces", "bond_mode", "lacp", "other_config",
                                           "external_ids"]).execute(check_error=True)
        if not rows:
            return None
        row = rows[0]
        members = [self.api().db_find("Interface", ("_uuid", "=", uuid), columns=["name"])
                   .execute(check_error=True) for uuid in row["interfaces"]]
        return {"owner": row["external_ids"].get(OWNER_KEY),
                "members": sorted(found[0]["name"] for found in members if found),
                "bond_mode": _optional(row["bond_mode"]), "lacp": _optional(row["lacp"]),
                "other_config": dict(row["other_config"])}

    def set_bond(self, bridge: str, name: str, members, mode: str, lacp: str,
                 other_config, owner: str):
        """Make port `name` of `bridge` a bond of `members` (ports of the bridge, which
        it takes over) with `mode`, `lacp` and `other_config`, in one transaction.
        A bond we made with the same members is changed in place."""
        api = self.api()
        current = self.read_bond(name)
        if current is not None and current["owner"] != owner:
            raise OvsdbConflict(f"port {name} exists and was not made by {owner}; "
                                f"not replacing it")
        settings = {"bond_mode": mode, "lacp": lacp, "other_config": dict(other_config)}
        with _refusals(f"bond {name} on {bridge}"), api.transaction(check_error=True) as txn:
            if current is not None and current["members"] == sorted(members):
                txn.add(api.db_clear("Port", name, "other_config"))  # a map: set merges
                for column, value in settings.items():
                    if value:
                        txn.add(api.db_set("Port", name, (column, value)))
                return
            numbers = self._ofports(members)
            if current is not None:
                txn.add(api.del_port(name, bridge=bridge))
            for member in members:
                txn.add(api.del_port(member, bridge=bridge, if_exists=True))
            interfaces = [txn.add(api.db_create("Interface", name=m, **numbers.get(m, {})))
                          for m in members]
            port = txn.add(api.db_create("Port", name=name, interfaces=interfaces,
                                         external_ids={OWNER_KEY: owner}, **settings))
            txn.add(api.db_add("Bridge", bridge, "ports", port))

    def delete_bond(self, bridge: str, name: str, owner: str):
        """Remove our bond `name`; its members become plain ports of the bridge again."""
        current = self.read_bond(name)
        if current is None or current["owner"] != owner:
            return
        api = self.api()
        numbers = self._ofports(current["members"])
        with _refusals(f"removing bond {name} from {bridge}"), \
                api.transaction(check_error=True) as txn:
            txn.add(api.del_port(name, bridge=bridge))
            for member in current["members"]:
                interface = txn.add(api.db_create("Interface", name=member,
                                                  **numbers.get(member, {})))
                port = txn.add(api.db_create("Port", name=member, interfaces=[interface]))
                txn.add(api.db_add("Bridge", bridge, "ports", port))

    def _ofports(self, names):
        """{interface: {"ofport_request": its OpenFlow port number}} of those that have
        one: a port that becomes a bond member (or a plain port again) is a new
        Interface row, which OVS would number anew; asking for the old number keeps
        what the switch, its flows and a config's port numbers call it."""
        numbers = {}
        for name in names:
            rows = self.api().db_find("Interface", ("name", "=", name),
                                      columns=["ofport"]).execute(check_error=True)
            number = _optional(rows[0]["ofport"]) if rows else None
            if isinstance(number, int) and 0 < number < 0xFF00:
                numbers[name] = {"ofport_request": number}
        return numbers

    def owned_ports(self, owner: str):
        """Names of the ports (bonds) `owner` made."""
        rows = self.api().db_find("Port", ("external_ids", "=", {OWNER_KEY: owner}),
                                  columns=["name"]).execute(check_error=True)
        return sorted(row["name"] for row in rows)

    def set_flow_limit(self, dpid: int, table_id: int, limit: int, owner: str, name: str):
        """Cap OpenFlow table `table_id` of the bridge at `limit` entries; adds beyond it
        are refused (a learn() into a full table just does not learn)."""
        api, bridge = self.api(), self.bridge_of(dpid)
        self._check_not_foreign(bridge, table_id, owner)
        with api.transaction(check_error=True) as txn:
            row = txn.add(api.db_create("Flow_Table", name=name, flow_limit=limit,
                                        overflow_policy="refuse",
                                        external_ids={OWNER_KEY: owner}))
            txn.add(api.db_remove("Bridge", bridge, "flow_tables", table_id, if_exists=True))
            txn.add(api.db_add("Bridge", bridge, "flow_tables", {table_id: row}))

    def clear_flow_limit(self, dpid: int, table_id: int, owner: str):
        """Remove our cap (the unreferenced Flow_Table row is garbage-collected)."""
        api, bridge = self.api(), self.bridge_of(dpid)
        if self._table_owner(bridge, table_id) == owner:
            api.db_remove("Bridge", bridge, "flow_tables", table_id).execute(check_error=True)

    def _table_row(self, bridge, table_id):
        rows = self.api().db_find("Bridge", ("name", "=", bridge),
                                  columns=["flow_tables"]).execute(check_error=True)
        return rows[0]["flow_tables"].get(table_id) if rows else None

    def _table_owner(self, bridge, table_id):
        row = self._table_row(bridge, table_id)
        return None if row is None else row.external_ids.get(OWNER_KEY)

    def _check_not_foreign(self, bridge, table_id, owner):
        row = self._table_row(bridge, table_id)
        if row is not None and row.external_ids.get(OWNER_KEY) != owner:
            by = row.external_ids.get(OWNER_KEY) or "someone else (no sdn-owner)"
            raise OvsdbConflict(f"table {table_id} of {bridge} already has a Flow_Table row set by "
                             f"{by}; not replacing it")


@contextlib.contextmanager
def _refusals(what):
    """ovsdbapp reports a transaction OVSDB refused (a constraint, a missing row) as a
    bare RuntimeError; here it becomes our error, with OVSDB's reason."""
    try:
        yield
    except RuntimeError as err:
        raise OvsdbError(f"{what}: {err}") from None


def _optional(value):
    """An optional string column as ovsdbapp returns it ("" / [] / the value)."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value or None
