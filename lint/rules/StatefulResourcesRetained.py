"""E9002: the storage stack keeps its data when a resource is deleted or replaced."""
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402

# RetainExceptOnCreate also deletes what a failed first create made: no orphan, no data lost.
DELETION = ("Retain", "RetainExceptOnCreate")
REPLACEMENT = ("Retain",)


class StatefulResourcesRetained(CloudFormationLintRule):
    id = "E9002"
    shortdesc = "Stateful resources are retained on delete and on replacement"
    description = (
        "In the stateful stack, every resource of a type listed in lint/stateful-types.json has "
        "DeletionPolicy Retain or RetainExceptOnCreate and UpdateReplacePolicy Retain, written as literals. "
        "cfn-lint's own W3011/I3011 leave S3 buckets out."
    )
    source_url = "lint/README.md"
    tags = ["project", "stateful"]

    def match(self, cfn):
        if _shared.stack_role(cfn.template) != _shared.STATEFUL:
            return []  # elsewhere E9001 already rejects the resource itself
        matches = []
        for logical_id, resource in _shared.resources(cfn.template, _shared.STATEFUL_TYPES):
            for attribute, allowed in (("DeletionPolicy", DELETION), ("UpdateReplacePolicy", REPLACEMENT)):
                value = resource.get(attribute)
                if value is None:
                    matches.append(RuleMatch(["Resources", logical_id],
                                             f"{logical_id} ({resource['Type']}) has no {attribute}; set {' or '.join(allowed)}"))
                elif value not in allowed:
                    matches.append(RuleMatch(["Resources", logical_id, attribute],
                                             f"{logical_id} ({resource['Type']}) has {attribute} {value!r}; it must be the literal {' or '.join(allowed)}"))
        return matches
