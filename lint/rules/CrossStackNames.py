"""E9004: exports and imports are named so that the renderer can resolve them."""
import json
import re
import sys
from pathlib import Path

from cfnlint.rules import CloudFormationLintRule, RuleMatch

if str(Path(__file__).resolve().parent) not in sys.path:  # cfn-lint loads rule files by path, not as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _shared  # noqa: E402

IMPORTED = re.compile(r"^\$\{(?P<parameter>[A-Za-z0-9]+StackName)\}-(?P<output>[A-Za-z0-9]+)$")
IMPORT_FORM = 'Fn::ImportValue: !Sub "${<Producer>StackName}-<OutputKey>"'


class CrossStackNames(CloudFormationLintRule):
    id = "E9004"
    shortdesc = "Cross-stack exports and imports follow the naming convention"
    description = (
        'An export is named !Sub "${AWS::StackName}-<its OutputKey>"; an import is '
        'Fn::ImportValue of !Sub "${<Producer>StackName}-<OutputKey>", where <Producer>StackName is a '
        "String parameter whose Default is the producing stack's name. render.py resolves both from "
        "the template alone to build the deploy order, and no environment's name is written in a template."
    )
    source_url = "lint/README.md"
    tags = ["project", "imports", "exports"]

    def match(self, cfn):
        template = cfn.template
        matches = []
        for output_key, output in (template.get("Outputs") or {}).items():
            export = output.get("Export") if isinstance(output, dict) else None
            if export is None:
                continue
            wanted = {"Fn::Sub": f"${{AWS::StackName}}-{output_key}"}
            name = export.get("Name") if isinstance(export, dict) else None
            if name != wanted:
                matches.append(RuleMatch(["Outputs", output_key, "Export", "Name"] if name is not None else ["Outputs", output_key, "Export"],
                                         f'export of {output_key} must be named !Sub "${{AWS::StackName}}-{output_key}"'))
        parameters = template.get("Parameters") or {}
        for section in ("Resources", "Outputs", "Globals"):
            for path, node in _shared.walk(template.get(section) or {}, [section]):
                if isinstance(node, dict) and "Fn::ImportValue" in node:
                    problem = self._import_problem(node["Fn::ImportValue"], parameters)
                    if problem:
                        matches.append(RuleMatch(path + ["Fn::ImportValue"], f"{problem}; write {IMPORT_FORM}"))
        return matches

    @staticmethod
    def _import_problem(argument, parameters):
        text = argument.get("Fn::Sub") if isinstance(argument, dict) and len(argument) == 1 else None
        hit = IMPORTED.match(text) if isinstance(text, str) else None
        if hit is None:
            shown = repr(text) if isinstance(text, str) else json.dumps(argument, default=str)
            return f"import of {shown} does not follow the convention"
        parameter = parameters.get(hit.group("parameter"))
        if not isinstance(parameter, dict) or parameter.get("Type") != "String" or not isinstance(parameter.get("Default"), str):
            return f"import {text!r} needs a String parameter {hit.group('parameter')} with the producing stack's name as Default"
        return None
