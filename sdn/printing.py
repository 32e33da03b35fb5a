"""Tables for people: rows of API objects as aligned text columns."""


def table(rows, columns):
    """Rows (dicts) as aligned text columns; `columns` are (heading, key or function)."""
    cells = [[_cell(row, key) for _, key in columns] for row in rows]
    widths = [max([len(heading)] + [len(c[i]) for c in cells])
              for i, (heading, _) in enumerate(columns)]
    lines = ["  ".join(h.upper().ljust(w) for (h, _), w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines)


def _cell(row, key):
    value = key(row) if callable(key) else row.get(key)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    return str(value)
