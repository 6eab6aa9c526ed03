"""One boto3 session per run, its clients, and the mapping of AWS errors.

One session means credentials are resolved once: an assume-role or MFA profile
asks once per run, not once per service and thread. Clients use botocore's
standard retry mode (bounded, with backoff); sam gets the same settings through
the environment (retry_environment)."""
from __future__ import annotations

import os
import threading

import boto3
import botocore.config
import botocore.exceptions

from ..errors import UserError

MAX_ATTEMPTS = int(os.environ.get("DEPLOY_MAX_ATTEMPTS", "8"))
RETRY_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},  # attempts in all, as AWS_MAX_ATTEMPTS counts them
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=20,
)

ClientError = botocore.exceptions.ClientError
BotoCoreError = botocore.exceptions.BotoCoreError

_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[tuple[str, str | None], object] = {}


# DEPLOY_RECORD_TEMPLATES=<folder>: every template this run sends to CloudFormation is
# also written there, exactly as sent (the end-to-end tests lint each one: the local AWS
# accepts templates AWS refuses). Unset, nothing is registered and nothing is written.
RECORD_TEMPLATES = "DEPLOY_RECORD_TEMPLATES"
_SENDS_TEMPLATES = ("CreateChangeSet", "CreateStack", "UpdateStack")
_recorded = 0


def record_template(operation: str, stack_name: str, body: str) -> None:
    """Write one template sent to CloudFormation (or put where it reads it) into the record folder, if any."""
    global _recorded
    folder = os.environ.get(RECORD_TEMPLATES)
    if not folder or not isinstance(body, str):
        return
    with _lock_record:
        _recorded += 1
        name = f"{os.getpid()}-{_recorded:04d}-{operation}-{stack_name.rsplit('/', 1)[-1] or 'template'}.template"
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
        handle.write(body)


_lock_record = threading.Lock()


def _record_sent(params, model, **_):
    if "TemplateBody" in params:
        record_template(model.name, str(params.get("StackName", "")), params["TemplateBody"])


def _session_locked() -> boto3.session.Session:
    global _session
    if _session is None:
        _session = boto3.session.Session()
        if os.environ.get(RECORD_TEMPLATES):
            for operation in _SENDS_TEMPLATES:
                _session.events.register(f"provide-client-params.cloudformation.{operation}", _record_sent)
    return _session


def session() -> boto3.session.Session:
    with _lock:
        return _session_locked()


def client(service: str, region: str | None = None):
    """A client of the run's one session; created once per service and region.
    Creating clients is not thread-safe in boto3, hence the lock."""
    key = (service, region or None)
    with _lock:
        if key not in _clients:
            _clients[key] = _session_locked().client(service, region_name=region or None, config=RETRY_CONFIG)
        return _clients[key]


def reset() -> None:
    """Forget the session and its clients (tests that switch endpoints)."""
    global _session
    with _lock:
        _session = None
        _clients.clear()


def retry_environment() -> dict[str, str]:
    """The same retry settings for a sam child process (botocore reads these)."""
    return {"AWS_RETRY_MODE": "standard", "AWS_MAX_ATTEMPTS": str(MAX_ATTEMPTS)}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", exc))


def describe_error(exc: BaseException) -> str:
    """One line for any AWS failure: the operation, the code and AWS's own message."""
    notes = "".join(f" {note}" for note in getattr(exc, "__notes__", ()))  # e.g. a cleanup that failed after it
    if isinstance(exc, ClientError):
        return f"AWS {exc.operation_name}: {error_code(exc)}: {error_message(exc)}{notes}"
    return f"AWS: {exc}{notes}"


def endpoint_description() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS"


def caller_identity(region: str | None = None, hint: str = "") -> dict:
    """STS GetCallerIdentity; every way it can fail is one line of bad input (status 2)."""
    try:
        return client("sts", region).get_caller_identity()
    except botocore.exceptions.NoCredentialsError:
        raise UserError(f"AWS credentials: none found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY{hint})") from None
    except ValueError as exc:  # botocore refuses a malformed endpoint URL this way
        raise UserError(f"AWS_ENDPOINT_URL {os.environ.get('AWS_ENDPOINT_URL', '')!r}: {exc}") from None
    except botocore.exceptions.NoRegionError:
        raise UserError("AWS region: none configured (set AWS_REGION or pass --region)") from None
    except botocore.exceptions.EndpointConnectionError:
        raise UserError(f"endpoint {endpoint_description()}: does not answer") from None
    except ClientError as exc:
        raise UserError(f"STS GetCallerIdentity at {endpoint_description()}: {error_message(exc)}") from None
    except BotoCoreError as exc:
        raise UserError(f"STS GetCallerIdentity at {endpoint_description()}: {exc}") from None
