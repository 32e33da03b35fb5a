"""The load balancer's spread mode (flows/lb_spread.py): a destination subnet spread
over a switch's ports by a select group, no NAT. Part of apps/lb.py's app (`Spreads`)
and of its REST controller (`SpreadsRest`); kept apart so each stays small.

REST (changes persist, in the app's state document under "spreads"):
    GET/POST   /v1/lb/spreads             POST body: {switch, subnet, ports}
    GET/DELETE /v1/lb/spreads/{id}
    GET        /v1/lb/spreads/{id}/stats  packets/bytes per port (the group's buckets)
"""
from controller import ofcompile, rest, southbound
from flows import dpid as dpids
from flows import lb_spread


def _stored_port(ref):
    """A stored spread's port: a number, as the REST check resolved it."""
    if isinstance(ref, bool) or not isinstance(ref, int):
        raise ValueError(f"a stored port must be a number, not {ref!r}")
    return ref


def switch_of(body) -> int:
    """The datapath id a spread body names (ValueError when it names none)."""
    if not isinstance(body, dict) or "switch" not in body:
        raise ValueError("a spread needs switch (its datapath id), subnet and ports")
    return dpids.parse(body["switch"])


def by_id(objects, raw_id, what):
    """objects[id] for a REST path's id: a 400 when it is no number, a 404 when none."""
    try:
        found = objects.get(int(raw_id))
    except ValueError:
        raise rest.ApiError(400, f"bad {what} id {raw_id!r}: a number") from None
    if found is None:
        raise rest.ApiError(404, f"no {what} {raw_id}")
    return found


class Spreads:
    """Mixed into the Lb app: needs its switches, settings, overrides, push, switch()
    and save_state."""

    def build_spreads(self, overrides):
        spreads = {}
        for key, body in sorted((overrides.get("spreads") or {}).items(),
                                key=lambda kv: int(kv[0])):
            if body is None:
                continue
            try:
                spreads[int(key)] = lb_spread.spread_from_dict(int(key), switch_of(body), body,
                                                               _stored_port)
            except ValueError as err:
                self.logger.error("lb: spread %s left out: %s", key, err)
        return spreads

    def spread_items(self, dpid):
        return lb_spread.spreads_on(list(self.spreads.values()), dpid)

    def sync_spreads(self, switch):
        """Put the switch's spreads right after a take-over: a spread made or deleted
        while the switch was being taken over was not sent to it."""
        have = set(switch.spread_ids)
        want = {s.spread_id for s in self.spreads.values() if s.dpid == switch.datapath.id}
        for spread_id in sorted(have - want):
            self.push(switch.datapath, lb_spread.forget_spread(spread_id))
        for spread_id in sorted(want - have):
            self.push(switch.datapath, lb_spread.spread_flows(self.spreads[spread_id]))
        switch.spread_ids = want

    def spread(self, spread_id):
        return by_id(self.spreads, spread_id, "spread")

    def add_spread(self, body):
        """Check, save, then program a new spread; what is wrong is a 400 (404: its
        switch is not connected) and changes nothing."""
        if not isinstance(body, dict) or "switch" not in body:
            raise rest.ApiError(400, "a spread needs switch (a bridge name or a datapath "
                                     "id), subnet and ports")
        number = self.dpid_of(body["switch"])      # a name: the connected bridge's
        switch = self.switch(number)
        spread_id = max(self.spreads, default=0) + 1
        try:
            spread = lb_spread.spread_from_dict(spread_id, number, body, switch.port_resolver())
        except ValueError as err:
            raise rest.ApiError(400, str(err)) from None
        clash = lb_spread.overlapping(spread, self.spreads.values())
        if clash is not None:
            raise rest.ApiError(400, f"subnet {spread.subnet} overlaps spread {clash.spread_id}'s "
                                     f"{clash.subnet} on this switch")
        inside = next((net for net in self.settings.subnets
                       if net.overlaps(spread.network)), None)
        if inside is not None:
            raise rest.ApiError(400, f"subnet {spread.subnet} overlaps the load balancer's "
                                     f"subnet {inside}, where VIPs and their backends live")
        self._store_spread(spread_id, lb_spread.body_of(spread))
        self.spreads[spread_id] = spread
        if switch.ready:
            self.sync_spreads(switch)
        return spread

    def delete_spread(self, spread):
        self._store_spread(spread.spread_id, None)
        del self.spreads[spread.spread_id]
        switch = self.switches.get(spread.dpid)
        if switch is not None and switch.ready:
            self.sync_spreads(switch)

    def _store_spread(self, spread_id, body):
        overrides = dict(self.overrides)
        overrides["spreads"] = dict(overrides.get("spreads") or {})
        if body is None:
            overrides["spreads"].pop(str(spread_id), None)
        else:
            overrides["spreads"][str(spread_id)] = body
        self.save_state(overrides)
        self.overrides = overrides

    def spread_stats(self, spread):
        """The spread with packets and bytes per port, from its group's bucket counters."""
        out = lb_spread.spread_to_dict(spread)
        switch = self.switch(spread.dpid)
        try:
            buckets = ofcompile.decode_group_stats(self.request(
                switch.datapath, ofcompile.group_stats_request(
                    switch.datapath, lb_spread.spread_ref(spread.spread_id))))
        except southbound.SwitchTimeout as err:
            raise rest.ApiError(504, str(err)) from None
        out["buckets"] = [{"port": port, "packets": packets, "bytes": nbytes}
                          for port, (packets, nbytes) in zip(spread.ports, buckets)]
        return out


class SpreadsRest:
    """Mixed into the app's REST controller (rest.AppController)."""

    @rest.api("lb_spread_list", "/v1/lb/spreads", methods=["GET"])
    def list_spreads(self, req, **_):
        return [lb_spread.spread_to_dict(s) for _, s in sorted(self.app.spreads.items())]

    @rest.api("lb_spread_add", "/v1/lb/spreads", methods=["POST"])
    def add_spread(self, req, **_):
        spread = self.app.add_spread(rest.parse_json_body(req))
        return rest.json_response(lb_spread.spread_to_dict(spread), 201)

    @rest.api("lb_spread_get", "/v1/lb/spreads/{spread_id}", methods=["GET"])
    def get_spread(self, req, spread_id, **_):
        return lb_spread.spread_to_dict(self.app.spread(spread_id))

    @rest.api("lb_spread_delete", "/v1/lb/spreads/{spread_id}", methods=["DELETE"])
    def delete_spread(self, req, spread_id, **_):
        spread = self.app.spread(spread_id)
        self.app.delete_spread(spread)
        return {"deleted": spread.spread_id}

    @rest.api("lb_spread_stats", "/v1/lb/spreads/{spread_id}/stats", methods=["GET"])
    def spread_stats(self, req, spread_id, **_):
        return self.app.spread_stats(self.app.spread(spread_id))
