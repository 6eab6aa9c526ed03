"""E9107: no secret sits in plaintext in a build or function environment."""
import re
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402

# A variable whose name ends like a secret holds one (APP_SECRET, GITHUB_TOKEN); one that
# says where to find it (VERIFY_TOKEN_PARAMETER, APP_SECRET_ARN) or something else (TOKEN_TTL) does not.
SECRET_NAME = re.compile(r"(?:SECRET|TOKEN|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?)$", re.IGNORECASE)
# CloudFormation resolves these at deploy time and stores the clear value in the resource.
RESOLVED_SECRET = re.compile(r"\{\{resolve:(?:secretsmanager|ssm-secure):")
FUNCTIONS = ("AWS::Lambda::Function", "AWS::Serverless::Function")


def _problem(name, value, template):
    """Why a plaintext environment variable holds a secret, or None."""
    for text in _shared.variants(value, template):
        if text is not None and RESOLVED_SECRET.search(text):
            return "resolves a secret into plaintext at deploy time"
    call = _shared.intrinsic(value)
    if call and call[0] == "Ref":
        parameter = (template.get("Parameters") or {}).get(call[1])
        if isinstance(parameter, dict) and _shared.is_true(parameter.get("NoEcho")):
            return f"holds the NoEcho parameter {call[1]} in plaintext"
    if isinstance(name, str) and SECRET_NAME.search(name) and value not in ("", None):
        return "is named like a secret"
    return None


class NoPlaintextSecrets(CloudFormationLintRule):
    id = "E9107"
    shortdesc = "No secrets in plaintext environment variables"
    description = (
        "A CodeBuild PLAINTEXT environment variable, a Lambda or SAM function variable (SAM Globals "
        "included) holds no secret: not a {{resolve:secretsmanager|ssm-secure}} reference, not a NoEcho "
        "parameter, not a value under a secret-like name (*_SECRET, *_TOKEN, ...). CodeBuild takes "
        "secrets as PARAMETER_STORE / SECRETS_MANAGER variables; a function gets the parameter's name "
        "(*_PARAMETER, *_ARN) and reads it at run time."
    )
    source_url = "lint/README.md"
    tags = ["project", "security", "secrets"]

    def match(self, cfn):
        template = cfn.template
        matches = []
        for logical_id, resource in _shared.resources(template, ("AWS::CodeBuild::Project",)):
            environment = _shared.properties(resource).get("Environment")
            variables = environment.get("EnvironmentVariables") if isinstance(environment, dict) else None
            for index, variable in enumerate(variables if isinstance(variables, list) else []):
                if isinstance(variable, dict) and variable.get("Type", "PLAINTEXT") == "PLAINTEXT":
                    problem = _problem(variable.get("Name"), variable.get("Value"), template)
                    if problem:
                        path = ["Resources", logical_id, "Properties", "Environment", "EnvironmentVariables", index, "Value"]
                        matches.append(RuleMatch(path, f"{logical_id}: {variable.get('Name')} {problem}; use Type PARAMETER_STORE or SECRETS_MANAGER"))
        places = [(["Resources", logical_id, "Properties"], _shared.properties(resource)) for logical_id, resource in _shared.resources(template, FUNCTIONS)]
        globals_function = (template.get("Globals") or {}).get("Function")
        if isinstance(globals_function, dict):
            places.append((["Globals", "Function"], globals_function))
        for path, props in places:
            environment = props.get("Environment")
            variables = environment.get("Variables") if isinstance(environment, dict) else None
            for name, value in (variables.items() if isinstance(variables, dict) else ()):
                problem = _problem(name, value, template)
                if problem:
                    # No function name in the message: cfn-lint merges Globals into every function,
                    # and one line with one message is reported once.
                    matches.append(RuleMatch(path + ["Environment", "Variables", name],
                                             f"{name} {problem}; pass the parameter's name and read the value at run time"))
        return matches
