"""Physical names, stack names and the checks on them. Pure functions."""
from __future__ import annotations

import ipaddress
import re
import string

from ..errors import UserError

APP = "ai-social-media"

# Stack keys in a fixed, readable order; the deploy order comes from the graph.
STORAGE = "storage"
STATELESS_KEYS = (
    "frontend",
    "backend",
    "webhook",
    "backend-pipeline",
    "frontend-pipeline",
    "operations",
    "edge",
)
STACK_KEYS = (STORAGE, *STATELESS_KEYS)

# What is bound to CloudFront (standard logging v2, its metrics) exists only in us-east-1:
# the edge stack deploys there, whatever the environment's region.
EDGE = "edge"
EDGE_REGION = "us-east-1"


def stack_region(key: str, region: str) -> str:
    """The region a stack deploys to: the environment's, except for the edge stack."""
    return EDGE_REGION if key == EDGE else region

# Bucket purposes: the {purpose} of the naming pattern, keyed by the name the
# templates use (names.buckets.<key>). prod's "uploads" is the spec's media bucket.
BUCKET_PURPOSES = {
    "media": "uploads",
    "frontend": "frontend",
    "log_archive": "log-archive",
    "metrics_archive": "metrics-archive",
    "backend_artifacts": "be-artifacts",
    "frontend_artifacts": "fe-artifacts",
}

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_STACK_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


def check_account_id(account_id: str) -> str:
    if not _ACCOUNT_RE.match(account_id or ""):
        raise UserError(f"account id {account_id!r}: must be exactly 12 digits")
    return account_id


def known_regions() -> frozenset[str]:
    """Every region botocore knows, in every partition: a list kept in the render
    layer, which imports no AWS SDK (tests/test_naming.py checks it against botocore)."""
    from .regions import REGIONS

    return REGIONS


def check_region(region: str) -> str:
    if region not in known_regions():
        raise UserError(f"region {region!r}: not an AWS region")
    return region


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 bucket name, or None when it is."""
    if not 3 <= len(name) <= 63:
        return f"is {len(name)} characters long (3-63 allowed)"
    if not _BUCKET_RE.match(name):
        return "may hold only lowercase letters, digits, hyphens and dots, and must start and end with a letter or digit"
    if ".." in name:
        return "contains '..'"
    try:
        ipaddress.IPv4Address(name)
        return "is formatted as an IP address"
    except ValueError:
        pass
    return None


def pattern_fields(pattern: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(pattern) if field is not None}


def bucket_names(pattern: str, account_id: str, metrics_archive: bool) -> dict[str, str]:
    """Physical bucket names from the environment's pattern, validated."""
    unknown = pattern_fields(pattern) - {"purpose", "account"}
    if unknown:
        raise UserError(f"naming.bucket {pattern!r}: unknown placeholder {{{sorted(unknown)[0]}}}")
    if "account" not in pattern_fields(pattern):
        raise UserError(f"naming.bucket {pattern!r}: must contain {{account}} (names are account-scoped)")
    if "purpose" not in pattern_fields(pattern):
        raise UserError(f"naming.bucket {pattern!r}: must contain {{purpose}}")
    names = {}
    for key, purpose in BUCKET_PURPOSES.items():
        if key == "metrics_archive" and not metrics_archive:
            continue
        name = pattern.format(purpose=purpose, account=account_id)
        problem = bucket_name_problem(name)
        if problem:
            raise UserError(f"bucket name {name!r} (from naming.bucket): {problem}")
        names[key] = name
    return names


def stack_names(prefix: str) -> dict[str, str]:
    names = {key: f"{prefix}-{key}" for key in STACK_KEYS}
    for name in names.values():
        if not _STACK_RE.match(name):
            raise UserError(f"stack name {name!r} (from naming.prefix): must start with a letter and hold only letters, digits and hyphens")
    return names
