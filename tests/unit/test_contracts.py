"""The contracts between apps that controller/pipeline.py declares: which app writes
which table at which priorities (BANDS), one canary per app that no other can
replace, and one meaning per cookie purpose.

Every app's desired entries for the representative configs of
test_app_combinations.py (and the entries that depend on events: learned hosts,
bans, a fabric's routes, located backends, the overlay's bridges) must stay inside
the declaration; an entry moved out of its band is refused, naming app, table,
priority and the band.
"""
import dataclasses

import pytest

from controller import pipeline, plan
from flows import bond, l2, lb, overlay, qos, router, topology, vlan
from flows.router_model import RouterSettings, RouterState
from flows.spec import FlowSpec, Learn, Match, Owner
from tests.support import combinations as combos
from tests.support.overlay_app import SECTION as OVERLAY_SECTION

FABRIC = topology.build({1, 2, 3}, [topology.Link((1, 1), (2, 1)), topology.Link((2, 2), (3, 1)),
                                    topology.Link((1, 2), (3, 2))], [(1, 3), (2, 3), (3, 3)])


def combination_specs(combo):
    """Everything `sdn plan` gives for the combination, per app."""
    mode, others = combo
    data = combos.config_of(mode, others)
    shared = plan.plan(data, plan.planned_switch("s1", combos.DPID, combos.PORTS),
                       datapath="system")
    apps = dict(shared["apps"])
    if "bond" in others:   # the bond app's own bridge
        own = plan.plan(data, plan.planned_switch("s2", combos.BONDED,
                                                  {1: "s2-eth1", 2: "s2-eth2", 3: "s2-eth3"}))
        apps["bond"] = apps.get("bond", []) + own["apps"]["bond"]
    return apps


def extra_specs():
    """Entries the representative configs do not give: those the apps install on events
    rather than on connect, and those of options the configs leave off."""
    settings = l2.L2Settings(mode="reactive")
    untagged = {1: frozenset({(3, 0)})}
    items = l2.learn_host("02:00:00:00:00:01", 3, None, 300) + \
        l2.learn_host("02:00:00:00:00:02", 3, 0, 300, untagged_egress=True) + \
        l2.learn_host("02:00:00:00:00:03", 3, 10, 300) + \
        [l2.ban_new_sources(3, 60), l2.ban_mac("02:00:00:00:00:04", 10, 60)] + \
        l2.fabric_ports(settings, FABRIC, 1) + \
        l2.fabric_ports(dataclasses.replace(settings, mode="datapath"), FABRIC, 1) + \
        [spec for specs in l2.route_host(FABRIC, "02:00:00:00:00:05", 0, (3, 3), 300,
                                         untagged).values() for spec in specs] + \
        topology.discovery_trap() + topology.flood_guard(FABRIC, 2)
    items += qos.police_flows(4, qos.Policing(5_000_000, 500_000))
    items += [qos.rule_flows(qos.Rule(7, (), 0xFFFF, queue=1))[-1],
              qos.rule_flows(qos.Rule(8, (), 1, queue=1))[-1]]   # the user picks the priority
    (vip,) = lb.vips_from(plan.config.section(lb.LbSettings, "lb", {"lb": combos.SECTIONS["lb"]}),
                          {}).values()
    located = [lb.Located(vip.backend(ip), mac, port, vid) for ip, mac, port, vid in
               (("10.0.0.11", "00:00:00:00:00:0b", 11, 10), ("10.0.0.12", "00:00:00:00:00:0c",
                                                                12, None))]
    items += lb.vip_flows(vip, located, False, located, frozenset({(11, 10)}))
    items += lb.probe_flows("10.0.0.254", frozenset({(11, 10)}))
    items += vlan.switch_plan([vlan.PortVlan(1, tag=10), vlan.PortVlan(2, tag=20)], [1, 2],
                              flood_only=[20])
    # the router with an external network, SNAT and a floating IP (the combinations'
    # router has tenant VLANs only)
    items += router.desired(RouterState(RouterSettings(
        interfaces=[{"vlan": 10, "address": "10.0.10.1/24"},
                    {"vlan": 100, "address": "203.0.113.1/24", "external": True}],
        routes=[{"prefix": "0.0.0.0/0", "next_hop": "203.0.113.254"}], snat=[10],
        floating_ips=[{"external": "203.0.113.10", "internal": "10.0.10.2"}])))
    return items


def overlay_specs():
    """Both bridges of both hypervisors, as `sdn plan` plans them."""
    items = []
    for n in (1, 2):
        int_ports = {1: "patch-tun", 2: f"hv{n}-eth2"}
        tun_ports = {1: "patch-int", 2: f"vx-hv{3 - n}"}
        for dpid, ports in ((0x1000 + n, int_ports), (0x2000 + n, tun_ports)):
            result = plan.plan({"overlay": OVERLAY_SECTION}, plan.planned_switch("br", dpid, ports))
            assert result["problems"] == [], result["problems"]
            items += result["apps"]["overlay"]
    return items


def flows_of(items):
    """(table, owner, priority) of every entry written: flow specs and their learn()s."""
    for item in items:
        if isinstance(item, FlowSpec):
            yield item.table, item.owner, item.priority
            for action in item.actions:
                if isinstance(action, Learn):
                    yield action.table, action.owner, action.priority


def every_desired_item():
    items = extra_specs() + overlay_specs()
    for combo in combos.COMBINATIONS:
        for specs in combination_specs(combo).values():
            items += specs
    return items


@pytest.mark.parametrize("combo", combos.COMBINATIONS, ids=combos.combo_id)
def test_every_apps_desired_entries_stay_inside_the_declaration(combo):
    for app, items in combination_specs(combo).items():
        for spec in items:
            if isinstance(spec, FlowSpec):
                pipeline.validate(spec)
                assert spec.owner.app in (app, "pipeline"), (app, spec)


def test_entries_installed_on_events_stay_inside_the_declaration():
    for spec in extra_specs() + overlay_specs():
        if isinstance(spec, FlowSpec):
            pipeline.validate(spec)


def test_every_declared_band_is_used():
    """A band no app writes is a stale declaration (or a test config that misses it)."""
    used = set()
    for table, owner, priority in flows_of(every_desired_item()):
        used |= {band for band in pipeline.bands_for(table, owner) if band.holds(priority)}
    declared = {band for bands in pipeline.BANDS.values() for band in bands}
    unused = {(table, band) for table, bands in pipeline.BANDS.items() for band in bands
              if band not in used}
    assert unused == set(), sorted(unused, key=str)
    assert used <= declared


def out_of_band(table, owner, priority):
    """The priorities nearest to `priority` that none of `owner`'s bands in `table` holds."""
    bands = pipeline.bands_for(table, owner)
    band = next(b for b in bands if b.holds(priority))
    return [p for p in (band.low - 1, band.high + 1)
            if 0 <= p <= 0xFFFF and not any(b.holds(p) for b in bands)]


def test_an_entry_moved_out_of_its_band_is_refused_naming_app_table_priority_and_band():
    checked = set()
    for spec in every_desired_item():
        if not isinstance(spec, FlowSpec) or (spec.table, spec.owner.app) in checked:
            continue
        checked.add((spec.table, spec.owner.app))
        for priority in out_of_band(spec.table, spec.owner, spec.priority):
            moved = dataclasses.replace(spec, priority=priority)
            with pytest.raises(pipeline.PipelineError) as refused:
                pipeline.validate(moved)
            text = str(refused.value)
            assert repr(spec.owner.app) in text and repr(spec.table) in text, text
            assert f"priority {priority}," in text and "outside its band" in text, text
            for band in pipeline.bands_for(spec.table, spec.owner):
                assert f"{band.low}..{band.high}" in text, text
    assert len(checked) >= 25, sorted(checked)


@pytest.mark.parametrize("table, owner", [("l2_src", lb.PROBES), ("qos", Owner("vlan", "default")),
                                          ("vip", l2.HOSTS), ("tun_vni", qos.RULES)])
def test_an_app_may_not_write_a_table_it_did_not_declare(table, owner):
    with pytest.raises(pipeline.PipelineError, match=f"app {owner.app!r} .* may not write "
                                                     f"table {table!r} \\(priority 100\\)"):
        pipeline.validate(FlowSpec(table, 100, Match(), owner))


def test_a_learned_entry_is_held_to_the_band_of_the_table_it_writes():
    (learning,) = [s for s in l2.switch_defaults(l2.L2Settings(mode="datapath"))
                   if any(isinstance(a, Learn) for a in s.actions)][:1]
    pipeline.validate(learning)
    actions = tuple(dataclasses.replace(a, priority=50) if isinstance(a, Learn) else a
                    for a in learning.actions)
    with pytest.raises(pipeline.PipelineError, match="'l2_dst' at priority 50"):
        pipeline.validate(dataclasses.replace(learning, actions=actions))


def test_bands_of_apps_that_share_a_switch_do_not_overlap_but_for_the_known_ones():
    overlaps = set()
    for table, bands in pipeline.BANDS.items():
        assert table in pipeline.TABLES
        for i, one in enumerate(bands):
            assert one.app is None or one.app in pipeline.APP_IDS, one
            assert 0 <= one.low <= one.high <= 0xFFFF, one
            for other in bands[i + 1:]:
                if one.low <= other.high and other.low <= one.high and one.app != other.app \
                        and not {one.app, other.app} & pipeline.SOLE_OWNERS:
                    overlaps.add((table, *sorted((one.app, other.app))))
    assert overlaps == set(pipeline.KNOWN_OVERLAPS)


# --- canaries ----------------------------------------------------------------------------

def test_canaries_of_all_apps_are_distinct_entries_above_every_band():
    apps = [app for app in pipeline.APP_IDS if app != "pipeline"]
    canaries = [pipeline.canary(app) for app in apps]
    for spec in canaries:
        pipeline.validate(spec)
    # one slot (table, match, priority) each: a second add would replace the first
    assert len({(c.table, c.match, c.priority) for c in canaries}) == len(apps)
    top = max(b.high for b in pipeline.BANDS["ingress"] if b.purpose != "canary")
    assert min(c.priority for c in canaries) > top
    others = {(t, p) for t, owner, p in flows_of(every_desired_item()) if owner.purpose != "canary"}
    assert not {(c.table, c.priority) for c in canaries} & others


def test_the_canary_priority_is_unique_for_every_possible_app_id(monkeypatch):
    """The old formula, 1 + (id >> 4), gave ids 0x10 and 0x11 one canary."""
    every = {f"app{n}": n for n in range(1, 0x100)}
    monkeypatch.setattr(pipeline, "APP_IDS", every)
    priorities = [pipeline.canary_priority(app) for app in every]
    assert len(set(priorities)) == len(every)
    assert all(pipeline.CANARY_BASE < p <= 0xFFFF for p in priorities)


def test_app_and_purpose_ids_are_checked_for_repeats():
    with pytest.raises(pipeline.PipelineError, match="apps 'a' and 'b' share the id 0x10"):
        pipeline._check_unique({"a": 0x10, "b": 0x10}, "app", 0xFF)
    with pytest.raises(pipeline.PipelineError, match="outside 1..0xff"):
        pipeline._check_unique({"a": 0x100}, "app", 0xFF)
    with pytest.raises(pipeline.PipelineError, match="unknown app 'nobody'"):
        pipeline.canary("nobody")


# --- one meaning per purpose -------------------------------------------------------------

def test_not_learning_on_inter_switch_ports_and_flood_only_vlans_are_two_purposes():
    fabric = l2.fabric_ports(l2.L2Settings(), FABRIC, 1)
    flood_only = [s for s in vlan.switch_plan([vlan.PortVlan(1, tag=10)], [1], flood_only=[10])
                  if s.table == "l2_src"]
    assert {s.owner.purpose for s in fabric} == {"inter_switch"}
    assert {s.owner.purpose for s in flood_only} == {"flood_vlan"}
    cookies = {pipeline.cookie(s.owner) >> 48 & 0xFF for s in fabric + flood_only}
    assert len(cookies) == 2
    assert "no_learn" not in pipeline.PURPOSE_IDS

