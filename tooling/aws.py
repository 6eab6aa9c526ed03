"""Every AWS call of the tooling goes through this module.

Clients use the standard chain (profile, region, AWS_ENDPOINT_URL) and botocore's
bounded retries with backoff, so throttling and transient errors are retried
without the callers having to think about it."""
from __future__ import annotations

import functools
import os

import boto3
import botocore.config
import botocore.exceptions

from .errors import UserError

RETRY_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "max_attempts": int(os.environ.get("DEPLOY_MAX_ATTEMPTS", "8"))},
    connect_timeout=5,
    read_timeout=60,
)


@functools.lru_cache(maxsize=None)
def client(service: str, region: str | None = None):
    return boto3.session.Session().client(service, region_name=region or None, config=RETRY_CONFIG)


def endpoint_description() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS"


def caller_identity(region: str | None = None) -> dict:
    try:
        return client("sts", region).get_caller_identity()
    except botocore.exceptions.NoCredentialsError:
        raise UserError("AWS credentials: none found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or pass --account-id)") from None
    except botocore.exceptions.NoRegionError:
        raise UserError("AWS region: none configured (set AWS_REGION or pass --region)") from None
    except botocore.exceptions.EndpointConnectionError:
        raise UserError(f"endpoint {endpoint_description()}: does not answer") from None
    except botocore.exceptions.ClientError as exc:
        raise UserError(f"STS GetCallerIdentity at {endpoint_description()}: {exc.response['Error'].get('Message', exc)}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise UserError(f"STS GetCallerIdentity at {endpoint_description()}: {exc}") from None
