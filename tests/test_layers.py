"""The layers of tooling/ import downwards only, and no module imports itself back
through others (a cycle means a piece sits in the wrong layer):

    cli  ->  deploy  ->  render, aws  ->  errors, paths

Inside deploy, its rooms import downwards only too:

    report  ->  recover  ->  execute  ->  gate  ->  deploy's own modules (states, stacks, ...)

render imports no AWS SDK (a render must not pay for botocore), and render and aws
do not import each other. Imports inside functions count too."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

TOOLING = ROOT / "tooling"
LAYER_OF = {"errors": 0, "paths": 0, "render": 1, "aws": 1, "deploy": 2, "cli": 3}
AWS_SDK = ("boto3", "botocore")
ROOM_OF = {None: 0, "gate": 1, "execute": 2, "recover": 3, "report": 4}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, resolved to absolute names (function-level imports included)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def project_modules() -> dict[str, set[str]]:
    files = [p for p in TOOLING.rglob("*.py") if p.name != "sam_forkserver.py"]  # runs in sam's own Python
    names = {module_name(p) for p in files}
    return {module_name(p): {i for i in imports_of(p) if i in names} for p in files}


def layer(module: str) -> tuple[str, int]:
    part = module.split(".")[1] if "." in module else "tooling"
    return part, LAYER_OF.get(part, -1)


def test_every_module_sits_in_a_known_layer():
    unknown = sorted(m for m in project_modules() if m != "tooling" and layer(m)[1] < 0)
    assert not unknown, f"modules outside the layers {sorted(LAYER_OF)}: {unknown}"


def test_imports_point_down_only():
    upward = []
    for module, imported in project_modules().items():
        if module == "tooling":
            continue
        name, level = layer(module)
        for target in imported:
            target_name, target_level = layer(target)
            if target_name == name or target == "tooling":
                continue
            if target_level >= level:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that do not point down: " + "; ".join(sorted(upward))


def room(module: str) -> tuple[str | None, int]:
    """A deploy module's room (None: deploy's own modules) and its level."""
    parts = module.split(".")
    name = parts[2] if len(parts) > 3 else None
    return name, ROOM_OF.get(name, -1)


def test_deploy_rooms_import_downwards_only():
    deploy = {m: i for m, i in project_modules().items() if m.startswith("tooling.deploy.")}
    unknown = sorted(m for m in deploy if room(m)[1] < 0)
    assert not unknown, f"deploy modules outside the rooms {sorted(r for r in ROOM_OF if r)}: {unknown}"
    upward = [f"{m} -> {t}" for m, imported in deploy.items() for t in imported
              if t.startswith("tooling.deploy.") and t.count(".") >= 2 and room(t)[0] != room(m)[0] and room(t)[1] >= room(m)[1]]
    assert not upward, "imports between deploy's rooms that do not point down: " + "; ".join(sorted(upward))


def test_no_import_cycles():
    graph = {m: {i for i in imported if i != m and i != "tooling"} for m, imported in project_modules().items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, path + [nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, [start]):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_render_layer_imports_no_aws_sdk():
    offenders = []
    for path in (TOOLING / "render").rglob("*.py"):
        for name in imports_of(path):
            if name.split(".")[0] in AWS_SDK or name.startswith("tooling.aws"):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    for path in (TOOLING / "aws").rglob("*.py"):
        offenders += [f"{path.relative_to(ROOT)}: {n}" for n in imports_of(path) if n.startswith(("tooling.render", "tooling.deploy"))]
    assert not offenders, offenders


def test_a_render_with_an_account_id_loads_no_aws_sdk(tmp_path):
    """As a whole process: render.py with --account-id never imports boto3 or botocore."""
    probe = (f"import sys, runpy; sys.argv = ['render.py', '--env', 'dev', '--account-id', '123456789012', "
             f"'--region', 'us-east-1', '--out', {str(tmp_path / 'out')!r}, '-q'];\n"
             "try:\n    runpy.run_path('render.py', run_name='__main__')\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))\n"
             "print(','.join(loaded))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"render loaded: {result.stdout.strip()[:300]}"
