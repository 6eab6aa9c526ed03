"""Fixtures for tests of the AWS layer on AWS's own answers, through botocore's
Stubber: no server, no network. tests/conftest.py loads this module as a plugin;
a test module asks for them with

    pytestmark = pytest.mark.usefixtures("no_real_aws")   # and the `stub` fixture"""
from __future__ import annotations

import os

import boto3
import pytest
from botocore.stub import Stubber

from tooling.aws import session

REGION = "us-east-1"


@pytest.fixture
def no_real_aws(monkeypatch, tmp_path):
    """No endpoint, credentials, profile or instance role of the machine leaks in."""
    for key in list(os.environ):
        if key.startswith("AWS_") and key != "AWS_CA_BUNDLE":
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session.reset()
    yield
    session.reset()


@pytest.fixture
def stub():
    """stub(service) -> the Stubber of the client the layer gets for (service, REGION)."""
    base = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    stubbers: dict[str, Stubber] = {}

    def get(service: str) -> Stubber:
        if service not in stubbers:
            client = base.client(service, region_name=REGION)
            session._clients[(service, REGION)] = client
            stubbers[service] = Stubber(client)
            stubbers[service].activate()
        return stubbers[service]

    yield get
    for stubber in stubbers.values():
        stubber.deactivate()
    session.reset()
