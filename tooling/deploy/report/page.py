"""The report page (`deploy.py report`, `apply --report FILE`): one self-contained HTML
file, nothing fetched when it is viewed (inline CSS and SVG, no script, no link out):

- the stack graph: the waves as columns, an arrow from each stack to the stacks that
  need it, and the exports and parameters that pass between them;
- the timeline of each stack's last operation and of each of its resources, from
  CloudFormation's events (as `rain logs --chart` draws it);
- the findings of check, with their fixes.

gather() reads what the page shows (AWS calls through tooling/aws); html() is a pure
function of that data."""
from __future__ import annotations

import datetime as dt
import html as htmllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...aws import cloudformation as cfn
from ..workspace import Workspace
from . import timeline

BOX_W, BOX_H, COL_W, ROW_H, PAD = 170, 44, 250, 64, 30


def edges(manifest: dict) -> list[dict]:
    """What passes from one stack to another: the exports it imports and the parameters
    deploy.py fills from the other's outputs."""
    exporter = {e: s["key"] for s in manifest["stacks"] for e in s["exports"]}
    found = []
    for stack in manifest["stacks"]:
        for dep in stack["depends_on"]:
            imports = sorted(e for e in stack["imports"] if exporter.get(e) == dep)
            params = sorted(f"{p} = {src['output']}{' (late)' if src['late'] else ''}"
                            for p, src in (stack.get("parameters") or {}).items() if src["stack"] == dep)
            found.append({"from": dep, "to": stack["key"], "exports": imports, "parameters": params})
        for p, src in (stack.get("parameters") or {}).items():  # a late parameter points against the waves
            if src["late"] and src["stack"] not in stack["depends_on"]:
                found.append({"from": src["stack"], "to": stack["key"], "exports": [], "parameters": [f"{p} = {src['output']} (late)"]})
    return found


def gather(ws: Workspace, findings: list, outcomes: list[dict] | None = None) -> dict:
    """The page's data: the stacks and their last operation, the edges, the findings."""
    def one(key: str) -> dict:
        name, region = ws.stacks[key]["name"], ws.region_of(key)
        stack = cfn.describe_stack(region, name)
        events = cfn.stack_events(region, name, limit=1000) if stack else []
        return {"key": key, "name": name, "region": region, "status": stack["StackStatus"] if stack else "NOT_DEPLOYED",
                "operation": timeline.last_operation(events, name).as_json()}

    keys = [k for wave in ws.manifest["waves"] for k in wave]
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        stacks = list(pool.map(one, keys))
    return {"env": ws.env, "account_id": ws.account_id, "region": ws.region, "waves": ws.manifest["waves"],
            "written": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "stacks": stacks, "edges": edges(ws.manifest), "findings": [f.as_json() for f in findings],
            "outcomes": outcomes or []}


def write(ws: Workspace, path: str | Path, findings: list, outcomes: list[dict] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html(gather(ws, findings, outcomes)), encoding="utf-8")
    return path


def _e(text) -> str:
    return htmllib.escape(str(text), quote=True)


STATUS_COLOURS = {"ok": "#2e7d32", "busy": "#f9a825", "failed": "#c62828", "none": "#9e9e9e"}


def _tone(status: str) -> str:
    if status == "NOT_DEPLOYED":
        return "none"
    if status.endswith("_FAILED") or "ROLLBACK" in status:
        return "failed"
    if status.endswith("_IN_PROGRESS"):
        return "busy"
    return "ok"


def graph_svg(data: dict) -> str:
    status = {s["key"]: s["status"] for s in data["stacks"]}
    place = {}
    for col, wave in enumerate(data["waves"]):
        for row, key in enumerate(wave):
            place[key] = (PAD + col * COL_W, PAD + 20 + row * ROW_H)
    width = PAD * 2 + (len(data["waves"]) - 1) * COL_W + BOX_W
    height = PAD * 2 + 20 + max(len(w) for w in data["waves"]) * ROW_H
    parts = [f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="stack graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
             '<path d="M0,0 L10,5 L0,10 z" fill="#607d8b"/></marker></defs>']
    for col, _ in enumerate(data["waves"]):
        parts.append(f'<text x="{PAD + col * COL_W}" y="{PAD}" class="wave">wave {col + 1}</text>')
    for edge in data["edges"]:
        if edge["from"] not in place or edge["to"] not in place:
            continue
        (x1, y1), (x2, y2) = place[edge["from"]], place[edge["to"]]
        late = x2 <= x1
        sx, sy = (x1 + BOX_W, y1 + BOX_H / 2) if not late else (x1, y1 + BOX_H - 6)
        tx, ty = (x2, y2 + BOX_H / 2) if not late else (x2 + BOX_W, y2 + BOX_H - 6)
        bend = max(40, abs(tx - sx) / 2)
        path = (f"M{sx},{sy} C{sx + bend},{sy} {tx - bend},{ty} {tx},{ty}" if not late
                else f"M{sx},{sy} C{sx - bend},{sy + 60} {tx + bend},{ty + 60} {tx},{ty}")
        label = "; ".join(edge["exports"] + edge["parameters"])
        parts.append(f'<path class="edge{" late" if late else ""}" d="{path}" marker-end="url(#arrow)" '
                     f'data-from="{_e(edge["from"])}" data-to="{_e(edge["to"])}"><title>{_e(edge["from"])} → {_e(edge["to"])}: {_e(label)}</title></path>')
    for col, wave in enumerate(data["waves"]):
        for key in wave:
            x, y = place[key]
            tone = _tone(status.get(key, "NOT_DEPLOYED"))
            parts.append(f'<g class="stack" data-stack="{_e(key)}" data-wave="{col + 1}">'
                         f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#fff" stroke="{STATUS_COLOURS[tone]}" stroke-width="2"/>'
                         f'<text x="{x + 10}" y="{y + 18}" class="key">{_e(key)}</text>'
                         f'<text x="{x + 10}" y="{y + 34}" class="status">{_e(status.get(key, "NOT_DEPLOYED"))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def edges_table(data: dict) -> str:
    rows = "".join(f'<tr data-edge="{_e(e["from"])}-&gt;{_e(e["to"])}"><td>{_e(e["from"])}</td><td>{_e(e["to"])}</td>'
                   f'<td>{"<br>".join(_e(x) for x in e["exports"]) or "–"}</td><td>{"<br>".join(_e(x) for x in e["parameters"]) or "–"}</td></tr>'
                   for e in data["edges"])
    return ('<table class="edges"><thead><tr><th>from</th><th>to</th><th>exports imported</th><th>parameters filled</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def timeline_html(data: dict) -> str:
    parts = []
    for stack in data["stacks"]:
        op = stack["operation"]
        if not op["stack"]:
            parts.append(f'<section class="op" data-timeline-stack="{_e(stack["key"])}"><h3>{_e(stack["key"])}</h3>'
                         f"<p>no operation recorded</p></section>")
            continue
        total = max(op["stack"]["seconds"], max((r["start"] + r["seconds"] for r in op["resources"]), default=0), 0.001)
        rows = [_bar(stack["key"], stack["key"], op["stack"], total, stack_row=True)]
        rows += [_bar(stack["key"], r["logical_id"], r, total) for r in op["resources"]]
        parts.append(f'<section class="op" data-timeline-stack="{_e(stack["key"])}"><h3>{_e(stack["key"])} '
                     f'<small>{_e(op["stack"]["status"])}, started {_e(op["stack"]["started"][:19])}, '
                     f'{op["stack"]["seconds"]:.1f} s</small></h3><div class="rows">{"".join(rows)}</div></section>')
    return "".join(parts)


def _bar(stack_key: str, label: str, span: dict, total: float, stack_row: bool = False) -> str:
    width = max(0.6, 100 * span["seconds"] / total)
    left = min(100 * span["start"] / total, 100 - width)
    tone = _tone(span["status"])
    attr = f'data-timeline-resource="{_e(label)}"' if not stack_row else 'data-timeline-total="1"'
    title = f'{label} [{span["type"]}] {span["status"]}: +{span["start"]:.1f} s, {span["seconds"]:.1f} s'
    if span.get("reason"):
        title += f" ({span['reason']})"
    return (f'<div class="row{" total" if stack_row else ""}" {attr} data-stack="{_e(stack_key)}">'
            f'<span class="label" title="{_e(span["type"])}">{_e(label)}</span>'
            f'<span class="track"><span class="bar {tone}" style="left:{left:.2f}%;width:{width:.2f}%" '
            f'title="{_e(title)}"></span></span><span class="secs">{span["seconds"]:.2f} s</span></div>')


def findings_html(data: dict) -> str:
    if not data["findings"]:
        return '<p id="no-findings">None: nothing blocks.</p>'
    items = "".join(f'<li class="finding{" blocking" if f["blocking"] else ""}" data-kind="{_e(f["kind"])}">'
                    f'<b>[{_e(f["kind"])}] {_e(f["stack"])}</b>: {_e(f["subject"])}<br>{_e(f["detail"])}<br>'
                    f'<i>fix:</i> <code>{_e(f["fix"])}</code>{"<br><i>override:</i> " + _e(f["override"]) if f.get("override") else ""}</li>'
                    for f in data["findings"])
    return f'<ul id="findings">{items}</ul>'


def outcomes_html(data: dict) -> str:
    if not data.get("outcomes"):
        return ""
    rows = "".join(f'<tr><td>{_e(o["key"])}</td><td>{_e(o["result"])}</td><td>{_e(o.get("status") or "")}</td>'
                   f'<td>{o.get("seconds", 0):.1f}</td><td>{_e(o.get("detail") or "")}</td></tr>' for o in data["outcomes"])
    return ('<h2>This apply</h2><table id="outcomes"><thead><tr><th>stack</th><th>result</th><th>status</th><th>s</th>'
            f'<th>detail</th></tr></thead><tbody>{rows}</tbody></table>')


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:20px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:14px;margin:14px 0 4px}
small{color:#666;font-weight:normal}
svg text.wave{font-weight:bold;fill:#555}svg text.key{font-weight:bold;font-size:13px}svg text.status{font-size:11px;fill:#555}
path.edge{fill:none;stroke:#90a4ae;stroke-width:1.5}path.edge.late{stroke-dasharray:5 4}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;font-size:12px}
.rows{border:1px solid #eee}.row{display:flex;align-items:center;height:20px;font-size:12px}.row.total{font-weight:bold;background:#fafafa}
.label{width:300px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding:0 6px}
.track{position:relative;flex:1;height:12px;background:#f3f3f3}.bar{position:absolute;top:0;height:12px;border-radius:2px}
.bar.ok{background:#43a047}.bar.busy{background:#fbc02d}.bar.failed{background:#e53935}.bar.none{background:#9e9e9e}
.secs{width:70px;text-align:right;padding-right:6px;color:#555}
li.finding{margin:6px 0}li.finding.blocking b{color:#c62828}code{font-size:12px}
"""


def html(data: dict) -> str:
    title = f"deploy.py report: {data['env']} in {data['account_id']}/{data['region']}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
            f"<style>{CSS}</style></head><body>"
            f"<h1>{_e(title)}</h1><p>written {_e(data['written'])}; waves "
            f"{_e(' → '.join('[' + ', '.join(w) + ']' for w in data['waves']))}</p>"
            f"{outcomes_html(data)}"
            f"<h2>Stacks</h2>{graph_svg(data)}{edges_table(data)}"
            f"<h2>Last deploy, per stack and resource</h2>{timeline_html(data)}"
            f"<h2>Findings</h2>{findings_html(data)}</body></html>\n")
