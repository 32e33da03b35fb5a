"""Checks shared by the parsers of REST bodies and config entries (flows/qos.py,
flows/overlay.py): clear messages, no silent defaults for typos."""


def only_keys(body, allowed, where):
    """`body` must be a JSON object whose keys are all in `allowed`."""
    if not isinstance(body, dict):
        raise ValueError(f"{where} must be a JSON object, not {type(body).__name__}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(allowed))}")
