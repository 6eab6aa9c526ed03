"""Physical names and their checks."""
import pytest

from tooling.render import naming
from tooling.errors import UserError


@pytest.mark.parametrize("name, problem", [
    ("ab", "characters long"),
    ("a" * 64, "characters long"),
    ("Upper-case", "lowercase"),
    ("under_score", "lowercase"),
    ("-leading", "start and end"),
    ("trailing.", "start and end"),
    ("two..dots", "'..'"),
    ("192.168.5.4", "IP address"),
])
def test_invalid_bucket_names(name, problem):
    assert problem in naming.bucket_name_problem(name)


@pytest.mark.parametrize("name", ["abc", "a" * 63, "ai-social-media-uploads-123456789012", "my.bucket.name", "1-2-3"])
def test_valid_bucket_names(name):
    assert naming.bucket_name_problem(name) is None


def test_bucket_names_follow_the_pattern():
    names = naming.bucket_names("ai-social-media-{purpose}-{account}", "123456789012", metrics_archive=True)
    assert names["media"] == "ai-social-media-uploads-123456789012"
    assert names["metrics_archive"] == "ai-social-media-metrics-archive-123456789012"
    assert len(set(names.values())) == len(names) == 6
    assert "metrics_archive" not in naming.bucket_names("x-{purpose}-{account}", "123456789012", metrics_archive=False)


def test_account_and_region_checks():
    assert naming.check_account_id("000000000000") == "000000000000"
    with pytest.raises(UserError):
        naming.check_account_id("0000")
    assert naming.check_region("eu-central-1") == "eu-central-1"
    assert naming.check_region("us-gov-west-1") == "us-gov-west-1"
    with pytest.raises(UserError, match="not an AWS region"):
        naming.check_region("eu-central-9")


def test_stack_names():
    assert naming.stack_names("ai-social-media-dev")["backend-pipeline"] == "ai-social-media-dev-backend-pipeline"
    with pytest.raises(UserError, match="stack name"):
        naming.stack_names("1bad_prefix")


def test_the_region_list_knows_every_region_botocore_knows():
    """render keeps its own list (it imports no AWS SDK); botocore is the reference."""
    import botocore.session

    session = botocore.session.get_session()
    known = {r for p in session.get_available_partitions() for r in session.get_available_regions("cloudformation", p)}
    missing = sorted(known - naming.known_regions())
    assert not missing, f"add to tooling/render/regions.py: {missing}"
