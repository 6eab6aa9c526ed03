"""Environment files: environments/<name>.toml, loaded and checked.

The schema below is the single list of what an environment must say. A missing
key or a value of the wrong type is reported by its dotted name, so the user
knows which line to add."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from ..errors import UserError

from ..paths import ROOT
ENVIRONMENTS_DIR = ROOT / "environments"

# dotted key -> expected type. Every key is required; use "" / [] / false to turn
# an optional feature off, so a forgotten key is never silently a default.
SCHEMA: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "region": str,
    "naming.prefix": str,
    "naming.bucket": str,
    "naming.table": str,
    "encryption.customer_managed_key": bool,
    "storage.metrics_archive": bool,
    "storage.noncurrent_version_expiration_days": int,
    "storage.abort_incomplete_multipart_days": int,
    "storage.cors_allowed_origins": list,
    "storage.session_ttl_attribute": str,
    "frontend.domain_name": str,
    "frontend.certificate_arn": str,
    "frontend.web_acl_id": str,
    "frontend.price_class": str,
    "backend.log_retention_days": int,
    "backend.max_upload_bytes": int,
    "backend.session_ttl_hours": int,
    "backend.presigned_url_seconds": int,
    "backend.throttle_rate_limit": int,
    "backend.throttle_burst_limit": int,
    "backend.max_uploads_per_session": int,
    "backend.jwt_issuer": str,
    "backend.jwt_audience": list,
    "webhook.log_retention_days": int,
    "webhook.verify_token_parameter": str,
    "webhook.app_secret_parameter": str,
    "webhook.throttle_rate_limit": int,
    "webhook.throttle_burst_limit": int,
    "pipelines.connection_arn": str,
    "pipelines.repository": str,
    "pipelines.branch": str,
    "pipelines.source_object_key": str,
    "operations.alarm_email": str,
    "operations.log_retention_days": int,
    "operations.thresholds": dict,
}

ALLOWED_LOG_RETENTION = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}


def available() -> list[str]:
    return sorted(path.stem for path in ENVIRONMENTS_DIR.glob("*.toml"))


def path_of(name: str, directory: Path = ENVIRONMENTS_DIR) -> Path:
    return directory / f"{name}.toml"


def load(name: str, directory: Path = ENVIRONMENTS_DIR) -> dict:
    path = path_of(name, directory)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.toml"))) or "none"
        raise UserError(f"environment {name!r}: unknown (no {_shown(path)}; known: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{_shown(path)}: malformed TOML: {exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{_shown(path)}: malformed TOML: not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{_shown(path)}: cannot be read: {exc.strerror}") from None
    validate(data, _shown(path))
    if data["name"] != name:
        raise UserError(f"{_shown(path)}: name = {data['name']!r} does not match the file name {name!r}")
    return data


def validate(data: dict, where: str) -> None:
    for dotted, expected in SCHEMA.items():
        value = _lookup(data, dotted)
        if value is _MISSING:
            raise UserError(f"{where}: missing key {dotted}")
        if isinstance(value, bool) and expected is int or not isinstance(value, expected):
            raise UserError(f"{where}: {dotted} must be {_type_name(expected)}, not {type(value).__name__}")
    for key in ("backend.log_retention_days", "webhook.log_retention_days", "operations.log_retention_days"):
        if _lookup(data, key) not in ALLOWED_LOG_RETENTION:
            raise UserError(f"{where}: {key} = {_lookup(data, key)} is not a CloudWatch Logs retention period")
    for origin in _lookup(data, "storage.cors_allowed_origins"):
        if not isinstance(origin, str) or not _ORIGIN.match(origin):
            raise UserError(f"{where}: storage.cors_allowed_origins: {origin!r} is not an origin a browser sends "
                            f"(https://host[:port], or http://localhost or http://127.0.0.1 with a port; no path, no wildcard)")
    for name, value in _lookup(data, "operations.thresholds").items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where}: operations.thresholds.{name} must be a number")
    domain, certificate = _lookup(data, "frontend.domain_name"), _lookup(data, "frontend.certificate_arn")
    if bool(domain) != bool(certificate):
        raise UserError(f"{where}: frontend.domain_name and frontend.certificate_arn go together (set both or neither): "
                        f"without both, the page is never served from that domain")
    if domain and not _DOMAIN.match(domain):
        raise UserError(f"{where}: frontend.domain_name {domain!r} is not a domain name (no scheme, no path)")
    if certificate and not _CLOUDFRONT_CERTIFICATE.match(certificate):
        raise UserError(f"{where}: frontend.certificate_arn {certificate!r}: CloudFront reads certificates from ACM in "
                        f"us-east-1 only (arn:aws:acm:us-east-1:<account>:certificate/<id>)")
    if _lookup(data, "backend.max_uploads_per_session") < 1:
        raise UserError(f"{where}: backend.max_uploads_per_session must be at least 1 (upload URLs per session)")
    issuer, audience = _lookup(data, "backend.jwt_issuer"), _lookup(data, "backend.jwt_audience")
    if issuer and not _JWT_ISSUER.match(issuer):
        raise UserError(f"{where}: backend.jwt_issuer {issuer!r} is not an https URL (the issuer of the tokens, e.g. "
                        f"https://cognito-idp.<region>.amazonaws.com/<user pool id>)")
    if bool(issuer) != bool(audience) or not all(isinstance(a, str) and a for a in audience):
        raise UserError(f"{where}: backend.jwt_issuer and backend.jwt_audience go together (an issuer and a list of "
                        f"non-empty audiences, or \"\" and []): API Gateway's JWT authorizer needs both")
    web_acl = _lookup(data, "frontend.web_acl_id")
    if web_acl and not _CLOUDFRONT_WEB_ACL.match(web_acl):
        raise UserError(f"{where}: frontend.web_acl_id {web_acl!r}: CloudFront takes only a WAFv2 web ACL of CLOUDFRONT "
                        f"scope (arn:aws:wafv2:us-east-1:<account>:global/webacl/<name>/<id>)")


_MISSING = object()
_JWT_ISSUER = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?$")
_ORIGIN = re.compile(r"^(https://[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?|http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?)$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
_CLOUDFRONT_CERTIFICATE = re.compile(r"^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/[0-9a-f-]+$")
_CLOUDFRONT_WEB_ACL = re.compile(r"^arn:aws[a-z-]*:wafv2:us-east-1:[0-9]{12}:global/webacl/[A-Za-z0-9_-]+/[0-9a-f-]+$")


def _lookup(data: dict, dotted: str):
    value = data
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _type_name(expected) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table"}
    return names.get(expected, getattr(expected, "__name__", str(expected)))


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
