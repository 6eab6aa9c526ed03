#!/usr/bin/env python3
"""Extract, from the CloudFormation registry schemas that cfn-lint ships, what the
deploy tooling decides by: per resource type, the properties whose change replaces
the resource (createOnlyProperties), may replace it (conditionalCreateOnlyProperties),
and the primary identifier.

    .tools/cfn-lint/bin/python ci/extract_schemas.py [--check]

Writes tooling/deploy/data/resource-schemas.json (sorted, stable). --check compares
instead, exit 1 on a difference: tests run it so the file follows the pinned cfn-lint."""
import json
import sys
from importlib import metadata
from pathlib import Path

import cfnlint.data.schemas

SCHEMAS = Path(cfnlint.data.schemas.__file__).parent
OUT = Path(__file__).resolve().parent.parent / "tooling" / "deploy" / "data" / "resource-schemas.json"
REGION = "us-east-1"  # the region with the most types; the properties do not differ by region


def extract() -> dict:
    providers = json.loads((SCHEMAS / "providers" / f"{REGION}.json").read_text())
    types = {}
    for type_name, digest in sorted(providers.items()):
        schema = json.loads((SCHEMAS / "resources" / f"{digest}.json").read_text())
        entry = {
            "createOnly": sorted(schema.get("createOnlyProperties", [])),
            "conditionalCreateOnly": sorted(schema.get("conditionalCreateOnlyProperties", [])),
            "primaryIdentifier": schema.get("primaryIdentifier", []),
        }
        types[type_name] = entry
    version = json.loads((SCHEMAS / "version.json").read_text()) if (SCHEMAS / "version.json").exists() else {}
    return {"source": f"cfn-lint {metadata.version('cfn-lint')}, registry schemas of {REGION}",
            "schema_date": version.get("schema_date", ""), "types": types}


def dump(data: dict) -> str:
    """One type per line: small diffs when the pinned cfn-lint moves."""
    lines = [f'"{k}": {json.dumps(v)},' for k, v in data["types"].items()]
    lines[-1] = lines[-1].rstrip(",")
    head = {k: v for k, v in data.items() if k != "types"}
    return (json.dumps(head)[:-1] + ', "types": {\n' + "\n".join(lines) + "\n}}\n")


def main() -> int:
    text = dump(extract())
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(OUT.parents[3])}: differs from the installed cfn-lint's schemas; "
                  f"regenerate: .tools/cfn-lint/bin/python ci/extract_schemas.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"{OUT}: {len(json.loads(text)['types'])} types")
    return 0


if __name__ == "__main__":
    sys.exit(main())
