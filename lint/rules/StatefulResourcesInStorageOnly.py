"""E9001: stateful resources live only in the stack whose StackRole is stateful."""
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402


class StatefulResourcesInStorageOnly(CloudFormationLintRule):
    id = "E9001"
    shortdesc = "Stateful resources only in the storage stack"
    description = (
        "Every template declares Metadata.StackRole (stateful or stateless), and a resource of a "
        "type listed in lint/stateful-types.json may appear only in the stateful one (DDR-045): "
        "a stateless stack that fails or is deleted must not take data with it or orphan a named resource."
    )
    source_url = "lint/README.md"
    tags = ["project", "stateful"]

    def match(self, cfn):
        role = _shared.stack_role(cfn.template)
        if role not in _shared.ROLES:
            where = ["Metadata", "StackRole"] if role is not None else ["Metadata"] if "Metadata" in cfn.template else []
            found = "none declared" if role is None else f"found {role!r}"
            return [RuleMatch(where, f"Metadata.StackRole must be one of {', '.join(_shared.ROLES)} ({found}): the project rules check each side of the split differently")]
        if role == _shared.STATEFUL:
            return []
        return [
            RuleMatch(["Resources", logical_id, "Type"],
                      f"{logical_id} is a stateful {resource['Type']} in a stateless stack; it belongs in the storage stack, reached here through Fn::ImportValue")
            for logical_id, resource in _shared.resources(cfn.template, _shared.STATEFUL_TYPES)
        ]
