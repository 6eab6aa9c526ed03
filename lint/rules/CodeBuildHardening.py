"""E9105: build projects run unprivileged and keep their logs."""
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402


class CodeBuildHardening(CloudFormationLintRule):
    id = "E9105"
    shortdesc = "CodeBuild projects are unprivileged and log"
    description = (
        "An AWS::CodeBuild::Project does not set Environment.PrivilegedMode (root on the build host, "
        "Docker daemon access; nothing here builds images) and does not turn both CloudWatch Logs and "
        "S3 logs off. checkov's CodeBuild checks cover neither."
    )
    source_url = "lint/README.md"
    tags = ["project", "security", "codebuild"]

    def match(self, cfn):
        matches = []
        for logical_id, resource in _shared.resources(cfn.template, ("AWS::CodeBuild::Project",)):
            props = _shared.properties(resource)
            base = ["Resources", logical_id, "Properties"]
            environment = props.get("Environment")
            if isinstance(environment, dict) and not _shared.is_false(environment.get("PrivilegedMode", False)):
                matches.append(RuleMatch(base + ["Environment", "PrivilegedMode"],
                                         f"{logical_id}: PrivilegedMode must be false or absent"))
            logs = props.get("LogsConfig")
            if isinstance(logs, dict):
                cloudwatch = logs.get("CloudWatchLogs")
                s3 = logs.get("S3Logs")
                cloudwatch_off = isinstance(cloudwatch, dict) and cloudwatch.get("Status") == "DISABLED"
                s3_on = isinstance(s3, dict) and s3.get("Status") == "ENABLED"
                if cloudwatch_off and not s3_on:
                    matches.append(RuleMatch(base + ["LogsConfig", "CloudWatchLogs", "Status"],
                                             f"{logical_id}: build logs are off; keep CloudWatchLogs enabled (or enable S3Logs)"))
        return matches
