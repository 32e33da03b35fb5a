"""What the apps know about a connected switch's ports: numbers and names, from
port-description replies and port-status messages, and how a reference by name
or number (config files, REST paths) resolves.

Ryu-free at import (`sdn plan` plans a switch with SwitchPorts, and the CLI must not
load Ryu): only the message decoders import controller.ofcompile, on first use."""
from flows import dpid


class SwitchPorts:
    """One connected switch: its name (the LOCAL port's) and ports."""

    def __init__(self, datapath):
        self.datapath = datapath
        self.name = None
        self.ports = {}  # number -> name

    def resolve(self, ref):
        """A port number for a reference by number or name, or None."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return int(ref) if int(ref) in self.ports else None
        return next((no for no, name in self.ports.items() if name == ref), None)

    def dpid(self):
        """The datapath id as text, for REST answers and logs (keys are datapath.id)."""
        return dpid.format(self.datapath.id)

    def port_resolver(self):
        """`resolve` that raises ValueError for a port the switch does not have (for
        flows/ parsers that report a bad reference in their own words)."""
        def resolve(ref):
            number = self.resolve(ref)
            if number is None:
                raise ValueError(f"switch {self.dpid()} has no port {ref!r}")
            return number
        return resolve

    def is_named(self, ref):
        """A config's switch reference: the bridge's name, or its datapath id in any
        spelling of flows/dpid.py."""
        number = dpid.of_ref(ref)
        return (self.name is not None and ref == self.name) or \
            (number is not None and number == self.datapath.id)

    def update_from_desc(self, msg):
        """Take a port-description reply part; True once the last part arrived."""
        from controller import ofcompile
        for number, name in ofcompile.decode_port_desc(msg):
            if number == ofcompile.LOCAL_PORT:
                self.name = name
            else:
                self.ports[number] = name
        return not msg.flags & ofcompile.REPLY_MORE

    def update_from_status(self, msg):
        """Take a port-status message; True when a port came or went."""
        from controller import ofcompile
        number, name, deleted = ofcompile.decode_port_status(msg)
        if number == ofcompile.LOCAL_PORT:
            return False
        known = number in self.ports
        if deleted:
            self.ports.pop(number, None)
        else:
            self.ports[number] = name
        return known == deleted
