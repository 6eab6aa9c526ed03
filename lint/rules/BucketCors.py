"""E9102: bucket CORS names its origins and allows only the methods uploads need."""
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402

METHODS = ("GET", "PUT", "POST")


class BucketCors(CloudFormationLintRule):
    id = "E9102"
    shortdesc = "S3 CORS rules name their origins and allow only GET, PUT, POST"
    description = (
        "A CorsRule of an AWS::S3::Bucket lists named origins (no '*' anywhere in an origin) and "
        "AllowedMethods among GET, PUT and POST: browsers upload with presigned PUT/POST and read with GET."
    )
    source_url = "lint/README.md"
    tags = ["project", "security", "s3"]

    def match(self, cfn):
        matches = []
        for logical_id, resource in _shared.resources(cfn.template, ("AWS::S3::Bucket",)):
            cors = _shared.properties(resource).get("CorsConfiguration")
            rules = cors.get("CorsRules") if isinstance(cors, dict) else None
            if not isinstance(rules, list):
                continue
            for index, rule in enumerate(rules):
                if not isinstance(rule, dict):
                    continue
                path = ["Resources", logical_id, "Properties", "CorsConfiguration", "CorsRules", index]
                for position, origin in enumerate(rule.get("AllowedOrigins") or []):
                    if isinstance(origin, str) and "*" in origin:
                        matches.append(RuleMatch(path + ["AllowedOrigins", position],
                                                 f"{logical_id}: CORS origin {origin!r} is a wildcard; name each origin"))
                for position, method in enumerate(rule.get("AllowedMethods") or []):
                    if isinstance(method, str) and method not in METHODS:
                        matches.append(RuleMatch(path + ["AllowedMethods", position],
                                                 f"{logical_id}: CORS method {method} is not allowed (only {', '.join(METHODS)})"))
        return matches
