"""The one place that talks to OVSDB: ovsdbapp over `tcp:127.0.0.1:6640`.

`make setup` adds a `ptcp:6640:127.0.0.1` Manager row (localhost only, next to any
managers already configured). Ryu 4.34's own OVSDB client breaks
with current `ovs` libraries (see README), ovsdbapp is OpenStack's maintained one.
Rows we create carry `external_ids:sdn-owner=<app>`; we only ever change or
remove rows that carry our owner.
"""
import os

from ovsdbapp.backend.ovs_idl import connection
from ovsdbapp.schema.open_vswitch import impl_idl

DEFAULT_REMOTE = "tcp:127.0.0.1:6640"
ENV_VAR = "SDN_OVSDB"
OWNER_KEY = "sdn-owner"


class OvsdbError(RuntimeError):
    pass


class Ovsdb:
    def __init__(self, remote=None, timeout=5):
        self.remote = remote or os.environ.get(ENV_VAR, DEFAULT_REMOTE)
        self.timeout = timeout
        self._api = None

    def api(self):
        if self._api is None:
            try:
                idl = connection.OvsdbIdl.from_server(self.remote, "Open_vSwitch")
                conn = connection.Connection(idl=idl, timeout=self.timeout)
                api = impl_idl.OvsdbIdl(conn)
            # ovsdbapp reports an unreachable server as a bare Exception ("Could not
            # retrieve schema"); this is the boundary where it becomes our error.
            except Exception as err:  # noqa: BLE001 (see above)
                raise OvsdbError(f"cannot reach OVSDB at {self.remote} ({err}); "
                                 f"enable it with: ovs-vsctl set-manager "
                                 f"p{self.remote}") from None
            self._api = api
        return self._api

    def bridge_of(self, dpid: int) -> str:
        rows = self.api().db_find("Bridge", ("datapath_id", "=", "%016x" % dpid),
                                  columns=["name"]).execute(check_error=True)
        if not rows:
            raise OvsdbError(f"no bridge with datapath id {dpid:016x} in OVSDB at {self.remote}")
        return rows[0]["name"]

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
            raise OvsdbError(f"table {table_id} of {bridge} already has a Flow_Table row set by "
                             f"{by}; not replacing it")
