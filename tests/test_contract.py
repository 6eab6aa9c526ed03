"""The contract of the split, over real renders of dev and prod."""
from __future__ import annotations

import re

from conftest import ACCOUNT, load_template
from tooling.render import naming, stateful
from tooling.render.graph import _walk

ENVS = ("dev", "prod")


def all_templates(out, manifest):
    return {stack["key"]: load_template(out, manifest, stack["key"]) for stack in manifest["stacks"]}


def test_no_stateful_resource_outside_storage(rendered):
    for env in ENVS:
        out, manifest = rendered[env]
        for key, template in all_templates(out, manifest).items():
            found = stateful.stateful_resources(template)
            if key == "storage":
                assert found, "storage holds the stateful resources"
            else:
                assert found == {}, f"{env}/{key}: {found}"


def test_every_import_matches_exactly_one_export_of_another_stack(rendered):
    for env in ENVS:
        _, manifest = rendered[env]
        exporters: dict[str, list[str]] = {}
        for stack in manifest["stacks"]:
            for name in stack["exports"]:
                exporters.setdefault(name, []).append(stack["key"])
        for stack in manifest["stacks"]:
            for name in stack["imports"]:
                assert len(exporters.get(name, [])) == 1, f"{env}/{stack['key']} imports {name}: exported by {exporters.get(name)}"
                assert exporters[name] != [stack["key"]]
            # a stack depends on what it imports, and on the stacks it takes parameters from (not late ones)
            needed = {exporters[name][0] for name in stack["imports"]}
            needed |= {source["stack"] for source in stack["parameters"].values() if not source["late"]}
            assert stack["depends_on"] == sorted(needed)


def test_no_storage_export_is_left_unused(rendered):
    for env in ENVS:
        _, manifest = rendered[env]
        imported = {name for stack in manifest["stacks"] for name in stack["imports"]}
        storage = next(s for s in manifest["stacks"] if s["key"] == "storage")
        unused = sorted(set(storage["exports"]) - imported)
        assert unused == [], f"{env}: storage exports nobody imports: {unused}"


def test_stateless_templates_reach_storage_only_through_imports(rendered):
    for env in ENVS:
        out, manifest = rendered[env]
        physical = list(manifest["physical_names"]["buckets"].values()) + [manifest["physical_names"]["table"]]
        for stack in manifest["stacks"]:
            if stack["stateful"]:
                continue
            text = (out / stack["template"]).read_text()
            for name in physical:
                # the table name is a prefix of nothing else, so a plain search is exact enough
                assert not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{env}/{stack['key']} names {name} literally"


def test_exports_follow_the_stack_name_convention(rendered):
    for env in ENVS:
        _, manifest = rendered[env]
        for stack in manifest["stacks"]:
            for name in stack["exports"]:
                assert name.startswith(stack["name"] + "-"), name


def test_physical_names_are_valid_and_account_scoped(rendered):
    for env in ENVS:
        _, manifest = rendered[env]
        for name in manifest["physical_names"]["buckets"].values():
            assert naming.bucket_name_problem(name) is None, name
            assert name.endswith(f"-{ACCOUNT}"), name


def test_prod_reproduces_the_spec_names(rendered):
    out, manifest = rendered["prod"]
    buckets = manifest["physical_names"]["buckets"]
    assert buckets["media"] == f"ai-social-media-uploads-{ACCOUNT}"
    assert manifest["physical_names"]["table"] == "media-selection-sessions"
    for name in buckets.values():
        assert re.fullmatch(rf"ai-social-media-[a-z-]+-{ACCOUNT}", name), name
    storage = load_template(out, manifest, "storage")
    assert storage["Resources"]["MediaBucket"]["Properties"]["BucketName"] == f"ai-social-media-uploads-{ACCOUNT}"
    assert storage["Resources"]["SessionsTable"]["Properties"]["TableName"] == "media-selection-sessions"


def literal_names(template: dict) -> set[str]:
    """Every literal string under a *Name property (BucketName, TableName, FunctionName, ...)."""
    found = set()
    for mapping in _walk(template.get("Resources", {})):
        for key, value in mapping.items():
            if key.endswith("Name") and isinstance(value, str) and key not in ("AttributeName", "IndexName", "MetricName", "KeyType"):
                found.add(value)
    return found


def test_two_environments_never_collide(rendered):
    (dev_out, dev), (prod_out, prod) = rendered["dev"], rendered["prod"]
    assert not {s["name"] for s in dev["stacks"]} & {s["name"] for s in prod["stacks"]}
    assert not {e for s in dev["stacks"] for e in s["exports"]} & {e for s in prod["stacks"] for e in s["exports"]}
    assert not set(dev["physical_names"]["buckets"].values()) & set(prod["physical_names"]["buckets"].values())
    assert dev["physical_names"]["table"] != prod["physical_names"]["table"]
    dev_names = set().union(*(literal_names(t) for t in all_templates(dev_out, dev).values()))
    prod_names = set().union(*(literal_names(t) for t in all_templates(prod_out, prod).values()))
    shared = {n for n in dev_names & prod_names if n.startswith(("ai-social-media", "/aws/", "media-selection"))}
    assert shared == set()


def test_storage_keeps_every_stateful_resource_on_delete_and_replace(rendered):
    for env in ENVS:
        out, manifest = rendered[env]
        storage = load_template(out, manifest, "storage")
        for logical_id in stateful.stateful_resources(storage):
            resource = storage["Resources"][logical_id]
            assert resource["DeletionPolicy"] in ("Retain", "RetainExceptOnCreate"), logical_id
            assert resource["UpdateReplacePolicy"] == "Retain", logical_id


def test_metrics_archive_exists_only_where_enabled(rendered):
    for env, enabled in (("dev", False), ("prod", True)):
        out, manifest = rendered[env]
        storage = load_template(out, manifest, "storage")
        assert ("MetricsArchiveBucket" in storage["Resources"]) is enabled
        assert ("metrics_archive" in manifest["physical_names"]["buckets"]) is enabled


def test_waves_put_storage_alone_first_and_respect_dependencies(rendered):
    for env in ENVS:
        _, manifest = rendered[env]
        waves = manifest["waves"]
        assert waves[0] == ["storage"]
        position = {key: i for i, wave in enumerate(waves) for key in wave}
        assert sorted(position) == sorted(naming.STACK_KEYS)
        for stack in manifest["stacks"]:
            for dep in stack["depends_on"]:
                assert position[dep] < position[stack["key"]]


def _denies_insecure_transport(policy: dict) -> bool:
    for statement in policy.get("Statement", []):
        condition = statement.get("Condition", {}).get("Bool", {})
        if statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false":
            resources = statement.get("Resource", [])
            return len(resources if isinstance(resources, list) else [resources]) == 2
    return False


def test_every_bucket_has_exactly_one_policy_and_it_denies_insecure_transport(rendered):
    """Across the set: the frontend bucket's policy lives in the frontend stack (it needs the distribution)."""
    for env in ENVS:
        out, manifest = rendered[env]
        templates = all_templates(out, manifest)
        storage = templates["storage"]
        buckets = {lid for lid, r in storage["Resources"].items() if r["Type"] == "AWS::S3::Bucket"}
        output_of = {o["Value"]["Ref"]: key for key, o in storage["Outputs"].items() if isinstance(o["Value"], dict) and "Ref" in o["Value"]}
        policies: dict[str, list[str]] = {}
        for key, template in templates.items():
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] != "AWS::S3::BucketPolicy":
                    continue
                target = resource["Properties"]["Bucket"]
                if "Ref" in target:
                    bucket = target["Ref"]
                else:
                    export = target["Fn::ImportValue"]["Fn::Sub"]
                    bucket = next(b for b, output in output_of.items() if export.endswith(f"-{output}"))
                assert _denies_insecure_transport(resource["Properties"]["PolicyDocument"]), f"{env}/{key}/{logical_id}"
                policies.setdefault(bucket, []).append(f"{key}/{logical_id}")
        assert {b: len(p) for b, p in policies.items()} == {b: 1 for b in buckets}, policies
        assert policies["FrontendBucket"][0].startswith("frontend/")
