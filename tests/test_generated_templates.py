"""Every template the tool builds itself is one CloudFormation accepts: cfn-lint (as CI
runs it, from the repository root) finds no error in adopt's import templates (dev and
prod, creating the storage stack or importing into it), migrate's retain and removal
templates for each stack of the old layout (tests/fixtures/legacy), rename's retain, removal
and import templates of the storage stack, and the copies that --allow-orphans deploys. The local AWS accepts templates AWS refuses (undefined
conditions, GetAtt of a resource the template lacks), so this is checked here, offline."""
from __future__ import annotations

import json

import pytest

from conftest import ROOT, cfn_lint_errors, load_template
from tooling.deploy.gate.changesets import for_import
from tooling.deploy.recover import adopt, migrate
from tooling.render import cfn_yaml, naming, stateful

LEGACY = ROOT / "tests" / "fixtures" / "legacy"
ACCOUNT = "123456789012"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


def storage_imports(env: str, out, manifest, region: str) -> dict[str, dict]:
    """adopt's import templates for one environment: every orphan into no stack; the
    buckets only, into a stack that holds the table; and everything but the key."""
    rendered = load_template(out, manifest, naming.STORAGE)
    resources = rendered["Resources"]
    importable = [lid for lid, r in resources.items() if r["Type"] in adopt.IDENTIFIER]
    known = {"EncryptionKey": ("AWS::KMS::Key", KEY_ID)} if "EncryptionKey" in resources else {}
    deployed = {**rendered, "Resources": {"SessionsTable": resources["SessionsTable"]},
                "Outputs": {k: v for k, v in rendered["Outputs"].items() if k.startswith("SessionsTable")}}
    buckets = [lid for lid in importable if resources[lid]["Type"] == "AWS::S3::Bucket"]
    return {
        f"{env}-import-all-fresh": adopt.import_template({}, rendered, importable, region, ACCOUNT, known),
        f"{env}-import-buckets-into-deployed": adopt.import_template(deployed, rendered, buckets, region, ACCOUNT, known),
        f"{env}-import-without-key": adopt.import_template(
            {}, rendered, [lid for lid in importable if not lid.startswith("EncryptionKey")], region, ACCOUNT, known),
    }


def migrate_templates() -> dict[str, dict]:
    """migrate's retain and removal templates for every old stack holding a stateful resource."""
    result = {}
    for path in sorted(LEGACY.glob("*.yaml")):
        deployed = cfn_yaml.load(path.read_text())
        resources = deployed["Resources"]
        moved_ids = [lid for lid, r in resources.items() if r["Type"] in stateful.STATEFUL_TYPES]
        if not moved_ids:
            continue
        attached = migrate.attached_resources(deployed, set(moved_ids))
        retained = migrate.retain_template(deployed, moved_ids + attached)
        moved = {lid: (resources[lid]["Type"], f"{path.stem}-{lid.lower()}") for lid in moved_ids}
        result[f"legacy-{path.stem}-retain"] = retained
        result[f"legacy-{path.stem}-remove"] = migrate.removal_template(retained, moved, "eu-west-1", ACCOUNT, attached)
    return result


def rename_templates(rendered_envs) -> dict[str, dict]:
    """rename's retain, removal and import templates: MediaBucket renamed UploadsBucket and, in
    prod, EncryptionKey StorageKey, in one run (the deployed template: the render)."""
    import re

    result = {}
    for env, (out, manifest) in rendered_envs.items():
        deployed = load_template(out, manifest, naming.STORAGE)
        physical = {"MediaBucket": ("AWS::S3::Bucket", manifest["physical_names"]["buckets"]["media"]),
                    "EncryptionKey": ("AWS::KMS::Key", KEY_ID)}
        olds = [lid for lid in physical if lid in deployed["Resources"]]
        attached = migrate.attached_resources(deployed, set(olds))
        retained = migrate.retain_template(deployed, olds + attached)
        removed = migrate.removal_template(retained, {lid: physical[lid] for lid in olds}, manifest["region"], ACCOUNT, attached)
        text = re.sub(r'"MediaBucket([".])', r'"UploadsBucket\1', json.dumps(deployed))
        renamed = json.loads(re.sub(r'"EncryptionKey([".])', r'"StorageKey\1', text))
        news = ["UploadsBucket"] + (["StorageKey"] if "EncryptionKey" in olds else [])
        assert set(news) <= set(renamed["Resources"]) and not set(olds) & set(renamed["Resources"])
        result[f"{env}-rename-retain"] = retained
        result[f"{env}-rename-remove"] = removed
        result[f"{env}-rename-import"] = adopt.import_template(removed, renamed, news, manifest["region"], ACCOUNT)
    return result


def orphan_takeovers(rendered_envs) -> dict[str, dict]:
    """The copy --allow-orphans deploys: named resources given an importable DeletionPolicy."""
    result = {}
    for env, (out, manifest) in rendered_envs.items():
        for stack in manifest["stacks"]:
            template = load_template(out, manifest, stack["key"])
            named = [lid for lid, r in template["Resources"].items() if "Name" in json.dumps(sorted((r.get("Properties") or {})))]
            result[f"{env}-{stack['key']}-takeover"] = for_import(template, named)[0]
    return result


@pytest.fixture(scope="module")
def generated(rendered, tmp_path_factory) -> dict[str, list[dict]]:
    """Template name -> cfn-lint's errors."""
    templates = {}
    for env, (out, manifest) in rendered.items():
        templates.update(storage_imports(env, out, manifest, manifest["region"]))
    templates.update(migrate_templates())
    templates.update(rename_templates(rendered))
    templates.update(orphan_takeovers(rendered))
    folder = tmp_path_factory.mktemp("generated")
    files = {}
    for name, template in templates.items():
        files[name] = folder / f"{name}.json"
        files[name].write_text(json.dumps(template, indent=1))
    found = cfn_lint_errors(files.values())
    return {name: found[str(path)] for name, path in files.items()}


def test_every_generated_template_is_generated(generated):
    names = set(generated)
    assert {"dev-import-all-fresh", "prod-import-all-fresh", "prod-import-buckets-into-deployed"} <= names
    assert {f"legacy-{k}-{step}" for k in ("storage", "frontend", "operations") for step in ("retain", "remove")} <= names
    assert {f"{env}-rename-{step}" for env in ("dev", "prod") for step in ("retain", "remove", "import")} <= names
    assert len([n for n in names if n.endswith("-takeover")]) == 16


def test_no_generated_template_has_a_cfn_lint_error(generated):
    failing = {name: errors for name, errors in generated.items() if errors}
    assert failing == {}

