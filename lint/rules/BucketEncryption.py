"""E9101: every bucket says how it is encrypted at rest."""
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402

ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")


class BucketEncryption(CloudFormationLintRule):
    id = "E9101"
    shortdesc = "S3 buckets declare default encryption"
    description = (
        "Every AWS::S3::Bucket has BucketEncryption with a ServerSideEncryptionByDefault.SSEAlgorithm "
        "of AES256, aws:kms or aws:kms:dsse. checkov's CKV_AWS_19 passes a bucket that says nothing."
    )
    source_url = "lint/README.md"
    tags = ["project", "security", "s3"]

    def match(self, cfn):
        matches = []
        for logical_id, resource in _shared.resources(cfn.template, ("AWS::S3::Bucket",)):
            path = ["Resources", logical_id, "Properties", "BucketEncryption"]
            encryption = _shared.properties(resource).get("BucketEncryption")
            if _shared.intrinsic(encryption):
                continue  # cfn-lint's schema checks cover what an intrinsic can evaluate to
            rules = encryption.get("ServerSideEncryptionConfiguration") if isinstance(encryption, dict) else None
            if not isinstance(rules, list) or not rules:
                where = path if encryption is not None else path[:-1] if "Properties" in resource else path[:-2]
                matches.append(RuleMatch(where, f"{logical_id} declares no BucketEncryption.ServerSideEncryptionConfiguration ({', '.join(ALGORITHMS)})"))
                continue
            for index, rule in enumerate(rules):
                default = rule.get("ServerSideEncryptionByDefault") if isinstance(rule, dict) else None
                algorithm = default.get("SSEAlgorithm") if isinstance(default, dict) else None
                if algorithm not in ALGORITHMS and not _shared.intrinsic(algorithm):
                    matches.append(RuleMatch(path + ["ServerSideEncryptionConfiguration", index],
                                             f"{logical_id}: SSEAlgorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}"))
        return matches
