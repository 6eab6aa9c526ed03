"""The export/import graph between stacks, and the waves it gives. Pure functions.

Export and import names are resolved from the rendered templates themselves: an
`Fn::Sub` is expanded with the template's parameter defaults and the stack's own
name, so the graph is never typed by hand and cannot drift from the templates."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import UserError

_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class StackNode:
    key: str
    name: str
    exports: dict[str, str] = field(default_factory=dict)  # export name -> output key
    imports: list[str] = field(default_factory=list)  # export names, sorted, unique
    outputs: list[str] = field(default_factory=list)  # every output key
    # Parameters deploy.py fills from another stack's output (exports do not cross regions):
    # parameter -> {"stack": key, "output": OutputKey, "late": bool}. A late one is filled
    # after its source deploys, by a second deploy of this stack (it cannot wait for it).
    parameter_sources: dict[str, dict] = field(default_factory=dict)


def resolve(value, variables: dict[str, str], where: str) -> str:
    """Resolve a literal, a Ref or an Fn::Sub to a string, or fail naming where."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref" and arg in variables:
            return variables[arg]
        if fn == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            scope = dict(variables)
            scope.update({k: resolve(v, variables, where) for k, v in local.items()})

            def substitute(match: re.Match) -> str:
                name = match.group(1)
                if name not in scope:
                    raise UserError(f"{where}: cannot resolve ${{{name}}} in {text!r} (only parameters with defaults and AWS::StackName/Region/AccountId)")
                return scope[name]

            return _SUB_VAR.sub(substitute, text)
        if fn == "Fn::Join":
            separator, parts = arg
            return separator.join(resolve(part, variables, where) for part in parts)
    raise UserError(f"{where}: cannot resolve {value!r} to a name")


def template_variables(template: dict, stack_name: str, account_id: str, region: str) -> dict[str, str]:
    variables = {"AWS::StackName": stack_name, "AWS::AccountId": account_id, "AWS::Region": region, "AWS::Partition": "aws"}
    for name, spec in (template.get("Parameters") or {}).items():
        if isinstance(spec, dict) and "Default" in spec:
            variables[name] = str(spec["Default"])
    return variables


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def stack_node(key: str, name: str, template: dict, account_id: str, region: str, source: str) -> StackNode:
    variables = template_variables(template, name, account_id, region)
    node = StackNode(key=key, name=name)
    for output_key, output in (template.get("Outputs") or {}).items():
        export = (output or {}).get("Export")
        if export:
            node.exports[resolve(export["Name"], variables, f"{source}: output {output_key}")] = output_key
    imports = set()
    for mapping in _walk({k: v for k, v in template.items() if k != "Outputs"}):
        if "Fn::ImportValue" in mapping:
            imports.add(resolve(mapping["Fn::ImportValue"], variables, f"{source}: Fn::ImportValue"))
    node.imports = sorted(imports)
    node.outputs = sorted((template.get("Outputs") or {}).keys())
    sources = (template.get("Metadata") or {}).get("ParameterSources") or {}
    parameters = template.get("Parameters") or {}
    for parameter, origin in sources.items():
        if parameter not in parameters:
            raise UserError(f"{source}: Metadata.ParameterSources names {parameter}, which is not a parameter of the template")
        if not isinstance(origin, dict) or not isinstance(origin.get("stack"), str) or not isinstance(origin.get("output"), str):
            raise UserError(f"{source}: ParameterSources.{parameter} must be {{stack: <key>, output: <OutputKey>[, late: true]}}")
        node.parameter_sources[parameter] = {"stack": origin["stack"], "output": origin["output"], "late": bool(origin.get("late", False))}
    return node


def link(nodes: list[StackNode]) -> dict[str, list[str]]:
    """depends_on per stack key; a missing or twice-exported name is an error."""
    exporter: dict[str, str] = {}
    for node in nodes:
        for name in node.exports:
            if name in exporter:
                raise UserError(f"export {name!r} is declared by both {exporter[name]} and {node.key}")
            exporter[name] = node.key
    by_key = {node.key: node for node in nodes}
    depends_on = {}
    for node in nodes:
        deps = set()
        for name in node.imports:
            if name not in exporter:
                raise UserError(f"stack {node.key}: imports {name!r}, which no stack exports")
            if exporter[name] == node.key:
                raise UserError(f"stack {node.key}: imports its own export {name!r}")
            deps.add(exporter[name])
        for parameter, origin in node.parameter_sources.items():
            other = by_key.get(origin["stack"])
            if other is None or other.key == node.key:
                raise UserError(f"stack {node.key}: parameter {parameter} comes from stack {origin['stack']!r}, which is not another stack of the set")
            if origin["output"] not in other.outputs:
                raise UserError(f"stack {node.key}: parameter {parameter} comes from {other.key}'s output {origin['output']}, which it does not have")
            if not origin["late"]:
                deps.add(other.key)
        depends_on[node.key] = sorted(deps)
    return depends_on


def waves(depends_on: dict[str, list[str]], order: tuple[str, ...] | list[str], first: str | None = None) -> list[list[str]]:
    """Topological layers (Kahn): every stack's dependencies are in earlier waves.

    `first`, when given, is a wave of its own before all others, whatever the
    imports say: the storage stack always deploys first, since even a stack that
    imports nothing from it (the webhook) packages its code into its bucket.
    Within a wave, keys keep the given `order` so output is stable."""
    remaining = {key: set(deps) for key, deps in depends_on.items()}
    rank = {key: i for i, key in enumerate(order)}
    done: set[str] = set()
    layers = []
    if first is not None:
        if remaining[first]:
            raise UserError(f"stack {first} must import nothing (it deploys first), but imports from {', '.join(sorted(remaining[first]))}")
        layers.append([first])
        done.add(first)
        del remaining[first]
    while remaining:
        ready = sorted((k for k, deps in remaining.items() if deps <= done), key=lambda k: rank.get(k, len(rank)))
        if not ready:
            cycle = " -> ".join(_find_cycle(remaining))
            raise UserError(f"stacks import from each other in a cycle: {cycle}")
        layers.append(ready)
        done.update(ready)
        for key in ready:
            del remaining[key]
    return layers


def _find_cycle(remaining: dict[str, set[str]]) -> list[str]:
    start = sorted(remaining)[0]
    path, seen = [start], {start}
    current = start
    while True:
        current = sorted(d for d in remaining[current] if d in remaining)[0]
        if current in seen:
            return path[path.index(current):] + [current]
        path.append(current)
        seen.add(current)


def dependents(depends_on: dict[str, list[str]], key: str) -> set[str]:
    """Every stack that needs `key`, directly or through others."""
    found: set[str] = set()
    frontier = [key]
    while frontier:
        current = frontier.pop()
        for other, deps in depends_on.items():
            if current in deps and other not in found:
                found.add(other)
                frontier.append(other)
    return found
