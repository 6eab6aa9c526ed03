"""E9103: every bucket policy refuses requests that are not over TLS."""
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402

WANTED = 'Effect: Deny, Principal: "*", Action: "s3:*", Condition: {Bool: {aws:SecureTransport: "false"}}, Resource: the bucket ARN and <bucket ARN>/*'


def _everyone(principal) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and set(principal) == {"AWS"} and _shared.as_list(principal["AWS"]) == ["*"]


def _without_tls(condition) -> bool:
    if not isinstance(condition, dict):
        return False
    for operator, tests in condition.items():
        if operator == "Bool" and isinstance(tests, dict):
            for key, value in tests.items():
                if key.lower() == "aws:securetransport" and all(_shared.is_false(v) for v in _shared.as_list(value)):
                    return True
    return False


def _coverage(resource, template) -> set:
    """{"bucket"} or {"objects"} when every way the Resource entry evaluates covers it."""
    covered = []
    for text in _shared.variants(resource, template):
        if text is None:
            return set()
        if text.endswith("/*") and "/" not in text[:-2]:
            covered.append("objects")
        elif "/" not in text:
            covered.append("bucket")
        else:
            return set()
    return set(covered) if len(set(covered)) == 1 else set()


class BucketPolicyTlsOnly(CloudFormationLintRule):
    id = "E9103"
    shortdesc = "Bucket policies deny requests without TLS, on the bucket and its objects"
    description = (
        "Every AWS::S3::BucketPolicy has a statement that denies s3:* to everyone when "
        "aws:SecureTransport is false, on both the bucket ARN and <bucket ARN>/* (FSBP S3.5; "
        "checkov has no CloudFormation check for it)."
    )
    source_url = "lint/README.md"
    tags = ["project", "security", "s3"]

    def match(self, cfn):
        matches = []
        for logical_id, resource in _shared.resources(cfn.template, ("AWS::S3::BucketPolicy",)):
            path = ["Resources", logical_id, "Properties", "PolicyDocument"]
            document = _shared.properties(resource).get("PolicyDocument")
            statements = document.get("Statement") if isinstance(document, dict) else None
            if not isinstance(statements, (list, dict)):
                matches.append(RuleMatch(path if document is not None else path[:-1],
                                         f"{logical_id}: write PolicyDocument.Statement as YAML so the TLS-only deny can be checked ({WANTED})"))
                continue
            statements = _shared.as_list(statements)
            covered, first = set(), None
            for index, statement in enumerate(statements):
                if not (isinstance(statement, dict) and statement.get("Effect") == "Deny" and _without_tls(statement.get("Condition"))):
                    continue
                first = index if first is None else first
                if _everyone(statement.get("Principal")) and any(a in ("s3:*", "*") for a in _shared.as_list(statement.get("Action"))):
                    for entry in _shared.as_list(statement.get("Resource")):
                        covered |= _coverage(entry, cfn.template)
            missing = [part for part in ("bucket", "objects") if part not in covered]
            if first is None:
                matches.append(RuleMatch(path + ["Statement"], f"{logical_id}: no statement denies requests without TLS ({WANTED})"))
            elif missing:
                matches.append(RuleMatch(path + ["Statement", first],
                                         f"{logical_id}: the TLS-only deny does not cover {' and '.join(missing)} for everyone and s3:* ({WANTED})"))
        return matches
