"""The switch events of an app that plans each switch from its ports (the VLAN and the
security apps): a connected switch's ports are learnt from the runtime's one
port-description request, and the app's `program(switch)` runs once they are known and
again whenever a port comes or goes. The app keeps `self.plans` ({dpid: the entries
last pushed}; a switch without one is programmed from scratch, reconciled against what
it holds) and `self.switches`; its `program` hands the plan to `push_plan`."""
from ryu.controller import ofp_event
from ryu.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                    set_ev_cls)

from ryu.lib import hub

from controller import pipeline
from controller.ports import SwitchPorts
from flows import diff
from flows.spec import Owner


class PortPlans:
    """A mixin for a southbound.SdnApp that defines `program(switch)`."""

    FORGET = ()   # deletes of what an older version of the app installed (converge)

    def push_plan(self, switch, plan):
        """Push the switch's plan: reconciled against what it holds the first time since
        it connected, then only what changed (entries that stay are not touched, so their
        traffic sees no gap)."""
        dpid = switch.datapath.id
        previous = self.plans.get(dpid)
        self.plans[dpid] = plan
        if previous is None:
            hub.spawn(self._reconcile, switch)
        else:
            changes = diff.plan_changes(previous, plan)
            if changes:
                self.push(switch.datapath, changes)

    def program_all(self):
        for switch in list(self.switches.values()):
            if switch.datapath.id in self.plans:
                self.program(switch)

    def _reconcile(self, switch):
        """Entries a previous controller left that are right stay untouched (the switch
        kept forwarding on them); missing ones are added, then stale ones deleted."""
        datapath = switch.datapath
        # the table misses too: run alone, nothing else would pass frames on. The plan
        # is the newest (ports may have changed meanwhile); none: the switch went away
        self.converge(datapath, [Owner(self.APP), pipeline.MISSES],
                      lambda: pipeline.table_misses() + self.plans.get(datapath.id, [])
                      + [pipeline.canary(self.APP)],
                      forget=self.FORGET, adopt=lambda installed: datapath.id in self.plans)

    def programmed_datapaths(self):
        return [s.datapath for dpid, s in self.switches.items() if dpid in self.plans]

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_connected(self, ev):
        datapath = ev.msg.datapath
        self.switches[datapath.id] = SwitchPorts(datapath)
        self.plans.pop(datapath.id, None)  # reconnected: start from a clean slate

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev):
        switch = self.switches.get(ev.msg.datapath.id)
        if switch is not None and switch.update_from_desc(ev.msg):
            self.program(switch)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        switch = self.switches.get(ev.msg.datapath.id)
        if switch is not None and switch.update_from_status(ev.msg):
            self.program(switch)  # a port came or went (a configured name may have come)

    def repair(self, datapath):
        switch = self.current_switch(self.switches, datapath)
        if switch is not None and self.plans.pop(datapath.id, None) is not None:
            self.program(switch)  # first program again: reconciled against what is left

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _switch_gone(self, ev):
        if self.forget_switch(self.switches, ev.datapath):
            self.plans.pop(ev.datapath.id, None)
