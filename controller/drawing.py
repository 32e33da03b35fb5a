"""A picture of the topology (GET /v1/topology.svg) from the REST view of it.

Plain SVG, no plotting library in the controller: switches in rows by hop count
from the flood tree's root, hosts in a row under their switches; flood-tree links
solid, links off the tree dashed (they carry unicast only).
"""
from collections import deque
from xml.sax.saxutils import escape

_ROW, _COLUMN, _MARGIN = 110, 96, 50
_TREE, _BLOCKED, _HOST = "#1f6feb", "#9a9a9a", "#555555"


def _rows(view):
    """Switch dpids by hop count from the root (unreachable ones last)."""
    neighbours = {s["dpid"]: set() for s in view["switches"]}
    for link in view["links"]:
        a, b = link["a"]["dpid"], link["b"]["dpid"]
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    depth, queue = {}, deque()
    for start in sorted(neighbours, key=lambda d: (d != view.get("root"), d)):
        if start in depth:
            continue
        depth[start] = 0 if not depth else max(depth.values()) + 1
        queue.append(start)
        while queue:
            node = queue.popleft()
            for other in sorted(neighbours[node]):
                if other not in depth:
                    depth[other] = depth[node] + 1
                    queue.append(other)
    rows = {}
    for dpid in sorted(depth):
        rows.setdefault(depth[dpid], []).append(dpid)
    return [rows[d] for d in sorted(rows)]


def topology_svg(view) -> str:
    names = {s["dpid"]: s.get("name") or s["dpid"].lstrip("0") or "0" for s in view["switches"]}
    rows = _rows(view)
    hosts = sorted(view.get("hosts", ()), key=lambda h: (h["dpid"], h["port"], h["mac"]))
    widest = max([len(r) for r in rows] + [len(hosts), 1])
    width = 2 * _MARGIN + (widest - 1) * _COLUMN + 40
    height = 2 * _MARGIN + len(rows) * _ROW + (_ROW if hosts else 0) + 20
    where = {}
    for index, row in enumerate(rows):
        offset = (width - (len(row) - 1) * _COLUMN) / 2
        for column, dpid in enumerate(row):
            where[dpid] = (offset + column * _COLUMN, _MARGIN + index * _ROW)
    host_y = _MARGIN + len(rows) * _ROW
    offset = (width - (len(hosts) - 1) * _COLUMN) / 2 if hosts else 0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
             f'font-family="sans-serif" font-size="11">',
             '<rect width="100%" height="100%" fill="white"/>']
    for link in view["links"]:
        (x1, y1), (x2, y2) = where[link["a"]["dpid"]], where[link["b"]["dpid"]]
        style = (f'stroke="{_TREE}" stroke-width="3"' if link["in_tree"] else
                 f'stroke="{_BLOCKED}" stroke-width="2" stroke-dasharray="6,4"')
        parts.append(f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" {style}/>')
    for column, host in enumerate(hosts):
        x, (sx, sy) = offset + column * _COLUMN, where.get(host["dpid"], (0, 0))
        parts.append(f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{x:.0f}" y2="{host_y:.0f}" '
                     f'stroke="{_HOST}" stroke-width="1"/>')
        parts.append(f'<circle cx="{x:.0f}" cy="{host_y:.0f}" r="14" fill="#f4f4f4" '
                     f'stroke="{_HOST}"/>')
        parts.append(f'<text x="{x:.0f}" y="{host_y + 28:.0f}" text-anchor="middle">'
                     f'{escape(host["mac"][-5:])}</text>')
    for dpid, (x, y) in where.items():
        parts.append(f'<rect x="{x - 32:.0f}" y="{y - 13:.0f}" width="64" height="26" rx="5" '
                     f'fill="#e8f0fe" stroke="{_TREE}"/>')
        parts.append(f'<text x="{x:.0f}" y="{y + 4:.0f}" text-anchor="middle">'
                     f'{escape(names.get(dpid, dpid))}</text>')
    parts.append(f'<text x="10" y="{height - 8:.0f}" fill="#333">solid: flood tree · dashed: '
                 f'unicast only · {len(view["switches"])} switches, {len(view["links"])} links, '
                 f'{len(hosts)} hosts</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
