"""E9104: the sessions table (and any table) cannot be deleted by accident."""
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402


class TableDeletionProtection(CloudFormationLintRule):
    id = "E9104"
    shortdesc = "DynamoDB tables have deletion protection"
    description = (
        "AWS::DynamoDB::Table sets DeletionProtectionEnabled: true, an AWS::DynamoDB::GlobalTable sets it "
        "on every replica (FSBP DynamoDB.6; no checker covers it). AWS::Serverless::SimpleTable cannot "
        "set it: declare an AWS::DynamoDB::Table instead."
    )
    source_url = "lint/README.md"
    tags = ["project", "reliability", "dynamodb"]

    def match(self, cfn):
        matches = []
        for logical_id, resource in _shared.resources(cfn.template, ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable", "AWS::Serverless::SimpleTable")):
            kind = resource["Type"]
            props = _shared.properties(resource)
            base = ["Resources", logical_id, "Properties"] if "Properties" in resource else ["Resources", logical_id]
            if kind == "AWS::Serverless::SimpleTable":
                matches.append(RuleMatch(["Resources", logical_id, "Type"],
                                         f"{logical_id}: AWS::Serverless::SimpleTable has no deletion protection; declare an AWS::DynamoDB::Table with DeletionProtectionEnabled: true"))
            elif kind == "AWS::DynamoDB::Table":
                if not _shared.is_true(props.get("DeletionProtectionEnabled")):
                    where = base + ["DeletionProtectionEnabled"] if "DeletionProtectionEnabled" in props else base
                    matches.append(RuleMatch(where, f"{logical_id}: set DeletionProtectionEnabled: true"))
            else:
                replicas = props.get("Replicas")
                for index, replica in enumerate(replicas if isinstance(replicas, list) else []):
                    if isinstance(replica, dict) and not _shared.is_true(replica.get("DeletionProtectionEnabled")):
                        matches.append(RuleMatch(base + ["Replicas", index], f"{logical_id}: set DeletionProtectionEnabled: true on every replica"))
        return matches
