"""The deploy fingerprint: a digest of everything a deploy of a stack sends, kept
in the deployed template's top-level Metadata (DeployFingerprint).

Equal digest = nothing to deploy, found with one GetTemplate and no change set.
The digest is taken over the template's meaning, not its text: comments,
formatting and Metadata (which CloudFormation does not deploy on its own) do not
count, so a change CloudFormation would see as no change never leaves a stack
"changed" on every later run."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

KEY = "DeployFingerprint"


def code_dirs(template: dict, template_dir: Path) -> list[Path]:
    """Local code folders a SAM template packages (CodeUri / ContentUri)."""
    found = set()
    for resource in (template.get("Resources") or {}).values():
        props = (resource or {}).get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            value = props.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                found.add((template_dir / value).resolve())
    return sorted(found)


def meaning(template: dict) -> dict:
    """The template without what CloudFormation does not deploy by itself: Metadata."""
    stripped = {k: v for k, v in template.items() if k != "Metadata"}
    stripped["Resources"] = {lid: {k: v for k, v in (r or {}).items() if k != "Metadata"}
                             for lid, r in (template.get("Resources") or {}).items()}
    return stripped


def fingerprint(template: dict, template_dir: Path, extra: str = "") -> str:
    """A digest of the template's meaning, the code it packages and `extra` (tags)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(meaning(template), sort_keys=True, default=str).encode())
    digest.update(extra.encode())
    for folder in code_dirs(template, template_dir):
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            data = path.read_bytes()  # name and length first: file boundaries are part of the digest
            digest.update(f"{path.relative_to(folder)}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()[:32]


def with_fingerprint(template_text: str, digest: str) -> str:
    """The template text with `Metadata: DeployFingerprint: <digest>` at the top level.
    The text (comments included) is kept where its Metadata is a block mapping or
    absent; any other layout is written as JSON, which is YAML too."""
    match = re.search(r"^Metadata:[ \t]*(#.*)?\r?\n((?:[ \t]*(?:#.*)?\r?\n)*)([ \t]+)\S", template_text, flags=re.MULTILINE)
    if match:
        at = match.end(1) + 1 if match.group(1) else match.start(2)
        return template_text[:at] + f"{match.group(3)}{KEY}: {digest}\n" + template_text[at:]
    if not re.search(r"^Metadata\s*:", template_text, flags=re.MULTILINE):
        return template_text.rstrip("\n") + f"\nMetadata:\n  {KEY}: {digest}\n"
    from ..render import cfn_yaml

    template = cfn_yaml.load(template_text)
    metadata = template.get("Metadata") if isinstance(template.get("Metadata"), dict) else {}
    template["Metadata"] = {**metadata, KEY: digest}
    return json.dumps(template, indent=1) + "\n"


def fingerprint_of(template: dict) -> str | None:
    metadata = template.get("Metadata")
    return str(metadata.get(KEY)) if isinstance(metadata, dict) and metadata.get(KEY) else None
