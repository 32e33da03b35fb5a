"""What a switch's silence raises, apart from controller/switch_sync.py (which builds on
the runtime) so that the runtime's own routes can answer it too."""


class SwitchTimeout(RuntimeError):
    """The switch did not answer a request or a barrier in time."""


class SwitchRefused(SwitchTimeout):
    """The switch answered a request with an OpenFlow error (at once, not after the
    timeout); a SwitchTimeout too, so whoever handles a switch that gave no answer
    handles this one."""


class SwitchSlow(RuntimeError):
    """A reconcile was sent but not confirmed: the switch answers reads, so its entries
    are not replaced (that would cut pinned connections); it is checked again later."""
