"""Load CloudFormation YAML, short-form intrinsics included (!Ref, !Sub, ...).

Short tags become their long form ({"Ref": x}, {"Fn::Sub": x}, ...), so the rest
of the tooling sees one shape whatever the author wrote."""
from __future__ import annotations

import yaml


# libyaml's parser when PyYAML has it (its wheels do): several times faster.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


_Loader.add_multi_constructor("!", _construct_tag)
# CloudFormation treats "on"/"off"/"yes"/"no" as strings; YAML 1.1 would make them booleans.
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in _Loader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    __import__("re").compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load(text: str) -> dict:
    """Parse a CloudFormation template; raises yaml.YAMLError on bad YAML."""
    document = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    return document if isinstance(document, dict) else {}
