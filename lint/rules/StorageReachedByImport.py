"""E9003: a stateless stack reaches buckets and tables only through Fn::ImportValue."""
import re
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402

# Properties whose value is a bucket or table (name or ARN), whatever the resource type.
NAME_KEYS = frozenset({
    "Bucket", "BucketName", "BucketARN", "BucketArn", "DestinationBucketName",
    "S3Bucket", "S3BucketName", "S3BucketArn", "TableName", "TableArn", "TableARN",
})
# Environment variables (Lambda, SAM Globals, CodeBuild) that carry one: MEDIA_BUCKET, SESSIONS_TABLE_NAME, ...
VARIABLE_NAME = re.compile(r"(?:^|_)(?:BUCKET|TABLE)(?:_NAME|_ARN)?$", re.IGNORECASE)
# Where `sam package` / `aws cloudformation package` write their own S3 location: not the author's.
PACKAGED = {
    "AWS::Lambda::Function": "Code",
    "AWS::Lambda::LayerVersion": "Content",
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::Serverless::Application": "Location",
    "AWS::CloudFormation::Stack": "TemplateURL",
    "AWS::ApiGateway::RestApi": "BodyS3Location",
    "AWS::ApiGatewayV2::Api": "BodyS3Location",
    "AWS::StepFunctions::StateMachine": "DefinitionS3Location",
}
PACKAGED_GLOBALS = frozenset({"CodeUri", "ContentUri", "DefinitionUri"})

_M = _shared.MARKERS
# Text after which a bucket or table name starts.
NAME_FOLLOWS = (
    ("an S3 ARN", re.compile(r"arn:[^:\s]*:s3:::")),
    ("a DynamoDB table ARN", re.compile(r"arn:[^:\s]*:dynamodb:[^:\s]*:[^:\s]*:table/")),
    ("an s3:// URI", re.compile(r"s3://")),
    ("a metric dimension", re.compile(r'"(?:TableName|BucketName)"\s*,\s*"')),
)
# A bucket's own host name: <bucket>.s3[.region|-website...].amazonaws.com
S3_HOST = re.compile(rf"([A-Za-z0-9.{_M}-]+?)\.s3(?:[.-][^./\s\"']+)*?\.(?:amazonaws\.com|{_shared.PSEUDO})")
NAME_END = re.compile(r"[/\"'\s,]")


def _problem(name: str):
    """Why `name` (a flattened bucket or table name) is not reached through an import, or None."""
    if not name or name == "*" or _shared.IMPORT in name or _shared.RESOURCE in name:
        return None
    if name[0] in "$%{<":
        return None  # a variable filled in at run time ($BUCKET in a buildspec, {bucket} in code), not a name
    for marker in (_shared.PARAMETER, _shared.PSEUDO, _shared.OTHER):
        if name == marker:
            return f"comes from {_shared.MARKER_NAMES[marker]}"
        if marker in name:
            return f"is built from {_shared.MARKER_NAMES[marker]} ({_shared.describe(name)!r})"
    return f"is the literal {name!r}"


class StorageReachedByImport(CloudFormationLintRule):
    id = "E9003"
    shortdesc = "Stateless stacks reach buckets and tables only through imports"
    description = (
        "In a stateless stack, a bucket or table (a Bucket/TableName-like property, a *_BUCKET or "
        "*_TABLE environment variable, an S3 Location, an S3 or DynamoDB ARN, an s3:// URI, a bucket "
        "host name, a TableName/BucketName metric dimension) comes from Fn::ImportValue of the storage "
        "stack's exports, never from a literal name or a parameter (DDR-045)."
    )
    source_url = "lint/README.md"
    tags = ["project", "stateless", "imports"]

    def match(self, cfn):
        if _shared.stack_role(cfn.template) == _shared.STATEFUL:
            return []
        template = cfn.template
        found: dict[tuple, str] = {}
        for logical_id, resource in _shared.resources(template):
            if resource.get("Type") in _shared.STATEFUL_TYPES:
                continue  # E9001 already rejects the resource itself
            skip = PACKAGED.get(resource.get("Type"))
            for key, value in _shared.properties(resource).items():
                if key != skip:
                    self._scan(value, ["Resources", logical_id, "Properties", key], template, found)
        for output_key, output in (template.get("Outputs") or {}).items():
            if isinstance(output, dict) and "Value" in output:
                self._scan(output["Value"], ["Outputs", output_key, "Value"], template, found)
        # cfn-lint merges SAM Globals into each function (same lines, so the same finding is
        # reported once); Globals are read too so that nothing depends on that merge.
        for section, settings in (template.get("Globals") or {}).items():
            for key, value in (settings.items() if isinstance(settings, dict) else ()):
                if key not in PACKAGED_GLOBALS:
                    self._scan(value, ["Globals", section, key], template, found)
        return [RuleMatch(list(path), message) for path, message in found.items()]

    def _scan(self, node, path, template, found):
        if path[-1] == "Principal":
            return  # service principals such as logging.s3.amazonaws.com are not bucket hosts
        call = _shared.intrinsic(node)
        if call and call[0] == "Fn::If" and isinstance(call[1], list) and len(call[1]) == 3:
            for branch in (1, 2):
                self._scan(call[1][branch], path + ["Fn::If", branch], template, found)
            return
        if isinstance(node, str) or call:
            self._patterns(node, path, template, found)
            return
        if isinstance(node, dict):
            self._named_pairs(node, path, template, found)
            for key, value in node.items():
                name_slot = key in NAME_KEYS or (path[-1] == "Variables" and isinstance(key, str) and VARIABLE_NAME.search(key))
                if name_slot and (isinstance(value, (str, int, float)) or _shared.intrinsic(value)):
                    self._name_value(value, path + [key], f"{key}", template, found)
                self._scan(value, path + [key], template, found)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                self._scan(value, path + [index], template, found)

    def _named_pairs(self, node, path, template, found):
        """{Name, Value} pairs (CodeBuild variables, alarm dimensions) and S3 Locations."""
        name = node.get("Name")
        plaintext = node.get("Type", "PLAINTEXT") == "PLAINTEXT"  # PARAMETER_STORE values are parameter names
        if isinstance(name, str) and "Value" in node and plaintext and (name in NAME_KEYS or VARIABLE_NAME.search(name)):
            self._name_value(node["Value"], path + ["Value"], name, template, found)
        if "Location" in node and (node.get("Type") == "S3" or path[-1] == "S3Logs"):
            self._name_value(node["Location"], path + ["Location"], "S3 Location", template, found)

    def _name_value(self, value, path, what, template, found):
        for text in _shared.variants(value, template):
            if text is None or any(p.search(text) for _, p in NAME_FOLLOWS) or S3_HOST.search(text):
                continue  # an ARN, URI or host name: _patterns looks at the name inside it
            problem = _problem(NAME_END.split(text, 1)[0])
            if problem:
                found.setdefault(tuple(path), f"{what} {problem}; import it from the storage stack with Fn::ImportValue")
                return

    def _patterns(self, node, path, template, found):
        for text in _shared.variants(node, template):
            if text is None:
                continue
            for what, pattern in NAME_FOLLOWS:
                for hit in pattern.finditer(text):
                    problem = _problem(NAME_END.split(text[hit.end():], 1)[0])
                    if problem:
                        found.setdefault(tuple(path), f"{what} whose name {problem}; import it from the storage stack with Fn::ImportValue")
                        return
            for hit in S3_HOST.finditer(text):
                problem = _problem(hit.group(1))
                if problem:
                    found.setdefault(tuple(path), f"an S3 host name whose bucket {problem}; import it from the storage stack with Fn::ImportValue")
                    return
