"""What the command line's values mean: field=value lists and VLAN id lists, and the
error for a command line the CLI itself refuses (exit status 2). Switches are passed to
the controller as given: it resolves bridge names and datapath ids alike."""


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
