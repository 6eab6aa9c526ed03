"""Expand SAM templates as CloudFormation does before any hook sees them (AWS::Serverless-2016-10-31).

Run by lint/guard.py with the SAM CLI's own Python (.tools/sam), which carries the
transform (aws-sam-translator); this file imports nothing of the project.
stdin: a JSON list of {"template": <template, intrinsics in long form>, "region": <region>};
stdout: the JSON list of the expanded templates, in the same order.

A function's local CodeUri becomes an S3 location first, as `sam package` makes it: the
transform accepts nothing else, and where the code lies is no concern of the controls."""
import json
import os
import sys

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

PACKAGED = "s3://packaged-by-sam/code.zip"


class NoManagedPolicies(ManagedPolicyLoader):
    """The templates name managed policies by ARN only, so nothing is looked up in IAM."""

    def __init__(self):
        pass

    def load(self):
        return {}


def packaged(template: dict) -> dict:
    function = ((template.get("Globals") or {}).get("Function")) or {}
    if isinstance(function.get("CodeUri"), str):
        function["CodeUri"] = PACKAGED
    for resource in (template.get("Resources") or {}).values():
        properties = resource.get("Properties") if isinstance(resource, dict) else None
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(properties, dict) and isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = PACKAGED
    return template


def main() -> int:
    expanded = []
    for item in json.load(sys.stdin):
        os.environ["AWS_DEFAULT_REGION"] = item["region"]  # the transform's pseudo parameters
        try:
            expanded.append(transform(packaged(item["template"]), {}, NoManagedPolicies()))
        except InvalidDocumentException as exc:
            print("; ".join(str(cause) for cause in exc.causes), file=sys.stderr)
            return 1
    json.dump(expanded, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
