"""Link bonding: intent (a bond of these ports, this mode, LACP or not) -> the OVSDB
settings of the bond's Port row and the one flow a bonded bridge needs.

OVS implements bonds in its NORMAL switching: the bond is one OVSDB Port with several
Interfaces, `bond_mode` picks how traffic spreads (active-backup: one member at a
time; balance-slb: by source MAC and VLAN, rebalanced by load; balance-tcp: by L4
hash, needs LACP) and `lacp` negotiates with the far end. An OpenFlow `output:` to a
member would bypass all of that, so a bridge the bond app drives forwards with
NORMAL: run the bond app alone on the bridges whose bonds it manages.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

from flows import dpid, switch_entries
from flows.body import only_keys
from flows.spec import NORMAL, FlowSpec, Match, Output, Owner

APP = "bond"
FORWARD = Owner(APP, "default")
MODES = ("active-backup", "balance-slb", "balance-tcp")
LACP_MODES = ("off", "active", "passive")
REBALANCE_MS = 1000      # balance-slb/tcp look at the load every second (OVS: 10 s)


@dataclass(frozen=True)
class Bond:
    switch: object          # the bridge, by name or datapath id (as in config files)
    name: str
    members: Tuple[str, ...]
    mode: str = "active-backup"
    lacp: str = "off"
    primary: str = None     # active-backup: the member to use whenever it is up


def bond_from_dict(switch, name, body) -> Bond:
    if not isinstance(body, dict):
        raise ValueError("a bond is an object with members, mode and lacp")
    only_keys(body, ("members", "mode", "lacp", "primary"), f"bond {name}")
    if not isinstance(name, str) or not name or "/" in name or len(name) > 15:
        raise ValueError(f"bond name must be an interface name (1-15 characters), not {name!r}")
    members = body.get("members")
    if not isinstance(members, list) or len(members) < 2 or \
            not all(isinstance(m, str) and m for m in members) or len(set(members)) != len(members):
        raise ValueError(f"bond {name}: members must be a list of two or more distinct port "
                         f"names, not {members!r}")
    if name in members:
        raise ValueError(f"bond {name}: a member cannot have the bond's name")
    mode, lacp = body.get("mode", "active-backup"), body.get("lacp", "off")
    if mode not in MODES:
        raise ValueError(f"bond {name}: mode must be one of {', '.join(MODES)}, not {mode!r}")
    if lacp not in LACP_MODES:
        raise ValueError(f"bond {name}: lacp must be one of {', '.join(LACP_MODES)}, "
                         f"not {lacp!r}")
    if mode == "balance-tcp" and lacp == "off":
        raise ValueError(f"bond {name}: balance-tcp needs LACP (lacp active or passive)")
    primary = body.get("primary")
    if primary is not None and primary not in members:
        raise ValueError(f"bond {name}: primary {primary!r} is not one of its members")
    return Bond(switch, name, tuple(members), mode, lacp, primary)


def bonds_for(settings, overrides, is_named, switch_id) -> Dict[str, Bond]:
    """{name: Bond} of one switch: the config file's bonds whose switch `is_named` this
    one, then `overrides` ({name: body or None}, from REST)."""
    bonds = {b.name: b for b in settings.bonds if is_named(b.switch)}
    for name, body in (overrides or {}).items():
        if body is None:
            bonds.pop(name, None)
        else:
            bonds[name] = bond_from_dict(switch_id, name, body)
    return bonds


def switch_dpid(ref) -> Optional[int]:
    """A config's switch reference as a datapath id when it is one (flows/dpid.py's
    spellings); a bridge name is only known once the switch has connected."""
    return dpid.of_ref(ref)


def named_bridges(settings) -> Set[str]:
    """Bridges the config gives bonds by name (claimed by name: see known_bonded)."""
    return {b.switch for b in settings.bonds if switch_dpid(b.switch) is None}


def known_bonded(settings, overrides) -> Set[int]:
    """Datapath ids that will have bonds, known before any switch connects: config bonds
    named by datapath id, and REST bonds (`overrides`: {dpid: {name: body or None}})."""
    dpids = {switch_dpid(b.switch) for b in settings.bonds} - {None}
    dpids |= {number for number, bonds in overrides.items()
              if any(body is not None for body in bonds.values())}
    return dpids


def bond_to_dict(bond: Bond) -> dict:
    out = {"name": bond.name, "members": list(bond.members), "mode": bond.mode,
           "lacp": bond.lacp}
    if bond.primary is not None:
        out["primary"] = bond.primary
    return out


def ovsdb_settings(bond: Bond) -> dict:
    """What the bond's Port row holds besides its interfaces."""
    other = {"bond-rebalance-interval": str(REBALANCE_MS)}
    if bond.lacp != "off":
        other["lacp-time"] = "fast"   # LACPDUs every second: a dead link is seen in 3 s
    if bond.primary is not None:
        # two OVS bonds back to back in active-backup must pick the same link: each
        # drops what arrives on a member it does not use
        other["bond-primary"] = bond.primary
    return {"mode": bond.mode, "lacp": bond.lacp, "other_config": other}


def switch_plan(bonds_here: List[Bond], in_fabric: bool = False) -> List[FlowSpec]:
    """A bridge with bonds forwards with OVS's NORMAL switching (which runs them); one
    without forwards nothing from this app (its ports may still be parallel links,
    which NORMAL would loop).

    `in_fabric` (the topology app runs): nothing from this app either. NORMAL floods
    out of every port and knows nothing of the fabric's flood tree, so on a looped
    fabric it storms; the bridge is the shared pipeline's instead, where a bond's
    members are parallel links of the fabric: the flood tree uses one (a bond is one
    hop of the tree), known unicast spreads over all of them by MAC, and a member
    that goes down leaves the fabric at once."""
    if not bonds_here or in_fabric:
        return []
    return [FlowSpec("ingress", 1, Match(), FORWARD, actions=(Output(NORMAL),))]


@dataclass(frozen=True)
class BondSettings:
    """The `bond` config section:

        bond:
          bonds:
            - {switch: s1, name: bond0, members: [s1-eth3, s1-eth4],
               mode: active-backup, lacp: "off", primary: s1-eth3}
    """
    bonds: tuple = ()

    def __post_init__(self):
        parsed = []
        for label, (switch, name), body in switch_entries.keyed(self.bonds, "bonds",
                                                                ("switch", "name")):
            with switch_entries.prefixed(label):   # bond_from_dict's messages name the bond
                parsed.append(bond_from_dict(switch, name, body))
        object.__setattr__(self, "bonds", tuple(parsed))


# --- the plan protocol (flows/app_plan.py): `sdn plan` finds the app through it -------

SETTINGS = BondSettings


def owns(settings: BondSettings, switch, facts) -> bool:
    """A bridge with bonds is the bond app's alone, but in the topology app's fabric,
    where bonded bridges are everybody's."""
    from flows.app_plan import IN_FABRIC
    return not facts.get(IN_FABRIC, False) and \
        bool(bonds_for(settings, {}, switch.is_named, switch.datapath.id))


def plan(settings: BondSettings, switch, facts):
    """NORMAL where the app owns the bridge (no table misses: nothing else runs there),
    and each bond's OVSDB port."""
    from flows.app_plan import IN_FABRIC, SwitchPlan
    bonds = bonds_for(settings, {}, switch.is_named, switch.datapath.id)
    result = SwitchPlan(switch_plan(list(bonds.values()), facts.get(IN_FABRIC, False)),
                        misses=False, canary_last=True)
    for name, want in sorted(bonds.items()):
        ovsdb = ovsdb_settings(want)
        result.ovsdb.append(f"Port {name} on {switch.name}: interfaces "
                            f"{','.join(want.members)}, bond_mode={ovsdb['mode']}, "
                            f"lacp={ovsdb['lacp']}, other_config={ovsdb['other_config']}")
    return result
