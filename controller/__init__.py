"""Shared runtime: pipeline and cookies, compiling specs to OpenFlow, REST base,
config, datapath detection and the Ryu compatibility fix.

Kept import-free so that `controller.ryu_compat` and `controller.datapath` load
without pulling in Ryu.
"""
