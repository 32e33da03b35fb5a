"""What the command line's values mean: field=value lists, VLAN id lists, datapath
ids, and the error for a command line the CLI itself refuses (exit status 2)."""


from flows import dpid


class UsageError(Exception):
    pass


def fields(text_items, what):
    """["k=v", ...] -> {k: v} with numbers as ints."""
    out = {}
    for item in text_items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what}: expected field=value, not {item!r}")
        out[key] = int(value) if value.isdigit() else value
    return out


def id_list(text):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"expected comma-separated VLAN ids, not {text!r}") from None


def parse_dpid(text):
    """A datapath id in the spellings of flows/dpid.py (those REST and config take)."""
    try:
        return dpid.parse(text)
    except dpid.DpidError as err:
        raise UsageError(str(err)) from None
