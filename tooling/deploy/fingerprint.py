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
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def with_fingerprint(template_text: str, digest: str) -> str:
    """The template text with `Metadata: DeployFingerprint: <digest>` at the top level."""
    line = f"  {KEY}: {digest}\n"
    match = re.search(r"^Metadata:[ \t]*\n", template_text, flags=re.MULTILINE)
    if match:
        return template_text[:match.end()] + line + template_text[match.end():]
    return template_text.rstrip("\n") + "\nMetadata:\n" + line


def fingerprint_of(template: dict) -> str | None:
    metadata = template.get("Metadata")
    return str(metadata.get(KEY)) if isinstance(metadata, dict) and metadata.get(KEY) else None
