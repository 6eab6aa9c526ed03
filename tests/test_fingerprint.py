"""tooling/deploy/fingerprint.py: the deploy fingerprint kept in a template's Metadata.

Covers what changes the digest (a property, packaged code, `extra`) and what does
not (comments, formatting, key order, top-level and resource Metadata, the
fingerprint itself), code_dirs, with_fingerprint's placement of DeployFingerprint,
and fingerprint_of reading it back."""
from __future__ import annotations

import pytest

from tooling.deploy import fingerprint as fp
from tooling.render import cfn_yaml

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: the backend

Metadata:
  StackRole: stateless   # read by the lint rules

Parameters:
  Env:
    Type: String
    Default: dev

Resources:
  Api:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/api
      Handler: app.handler
      Runtime: python3.12
      MemorySize: 256
  ApiLogs:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub /acme/${Env}/api
      RetentionInDays: 14
"""

# The same template: other comments, flow style, other indentation, other key order,
# other Metadata (top level and on a resource).
SAME_MEANING = """\
# a comment at the top
Description: "the backend"
Transform: AWS::Serverless-2016-10-31
AWSTemplateFormatVersion: '2010-09-09'
Metadata: {StackRole: something-else, Note: [1, 2]}
Parameters: {Env: {Default: dev, Type: String}}
Resources:
    ApiLogs:
        Metadata:
            checkov: {skip: [{id: CKV_AWS_158}]}
        Properties: {RetentionInDays: 14, LogGroupName: !Sub "/acme/${Env}/api"}
        Type: AWS::Logs::LogGroup
    Api:   # the function
        Type: AWS::Serverless::Function
        Metadata:
            BuildMethod: python3.12
        Properties:
            Runtime: python3.12
            MemorySize: 256
            Handler: app.handler
            CodeUri: src/api
"""


@pytest.fixture
def folder(tmp_path):
    code = tmp_path / "src" / "api"
    code.mkdir(parents=True)
    (code / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (code / "lib").mkdir()
    (code / "lib" / "util.py").write_text("X = 1\n")
    return tmp_path


def digest(text: str, folder, extra: str = "") -> str:
    return fp.fingerprint(cfn_yaml.load(text), folder, extra)


def test_digest_is_stable_and_short(folder):
    first = digest(TEMPLATE, folder)
    assert first == digest(TEMPLATE, folder)
    assert len(first) == 32 and all(c in "0123456789abcdef" for c in first)


# --- what changes it --------------------------------------------------------------------------

@pytest.mark.parametrize("old,new", [
    ("MemorySize: 256", "MemorySize: 512"),
    ("RetentionInDays: 14", "RetentionInDays: 30"),
    ("Default: dev", "Default: prod"),
    ("Description: the backend", "Description: the backend, renamed"),
])
def test_a_property_changes_it(folder, old, new):
    assert old in TEMPLATE
    assert digest(TEMPLATE, folder) != digest(TEMPLATE.replace(old, new), folder)


def test_code_content_changes_it(folder):
    before = digest(TEMPLATE, folder)
    (folder / "src" / "api" / "lib" / "util.py").write_text("X = 2\n")
    assert digest(TEMPLATE, folder) != before


def test_a_new_code_file_changes_it(folder):
    before = digest(TEMPLATE, folder)
    (folder / "src" / "api" / "new.py").write_text("")
    assert digest(TEMPLATE, folder) != before


def test_a_renamed_code_file_changes_it(folder):
    before = digest(TEMPLATE, folder)
    (folder / "src" / "api" / "app.py").rename(folder / "src" / "api" / "main.py")
    assert digest(TEMPLATE, folder) != before


def test_pycache_does_not_change_it(folder):
    before = digest(TEMPLATE, folder)
    cache = folder / "src" / "api" / "__pycache__"
    cache.mkdir()
    (cache / "app.cpython-312.pyc").write_bytes(b"\x00\x01")
    assert digest(TEMPLATE, folder) == before


def test_code_outside_the_code_folder_does_not_change_it(folder):
    before = digest(TEMPLATE, folder)
    (folder / "src" / "README.md").write_text("not packaged")
    assert digest(TEMPLATE, folder) == before


def test_extra_changes_it(folder):
    assert digest(TEMPLATE, folder, "[('env', 'dev')]") != digest(TEMPLATE, folder, "[('env', 'prod')]")
    assert digest(TEMPLATE, folder) != digest(TEMPLATE, folder, "x")


def test_code_trees_differing_only_in_file_boundaries_differ(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        (root / "src" / "api").mkdir(parents=True)
    (one / "src" / "api" / "a").write_text("1")
    (one / "src" / "api" / "b").write_text("2")
    (two / "src" / "api" / "a").write_text("1b2")
    assert digest(TEMPLATE, one) != digest(TEMPLATE, two)


# --- what does not ------------------------------------------------------------------------------

def test_comments_formatting_key_order_and_metadata_do_not_change_it(folder):
    assert cfn_yaml.load(TEMPLATE) != cfn_yaml.load(SAME_MEANING)  # they differ as parsed (Metadata) ...
    assert digest(TEMPLATE, folder) == digest(SAME_MEANING, folder)  # ... but not in meaning


def test_top_level_metadata_does_not_change_it(folder):
    without = TEMPLATE.replace("Metadata:\n  StackRole: stateless   # read by the lint rules\n", "")
    assert "Metadata" not in cfn_yaml.load(without)
    assert digest(TEMPLATE, folder) == digest(without, folder)


def test_resource_metadata_does_not_change_it(folder):
    with_metadata = TEMPLATE.replace("    Type: AWS::Logs::LogGroup\n",
                                     "    Type: AWS::Logs::LogGroup\n    Metadata:\n      cfn-lint: {config: {ignore_checks: [W1]}}\n")
    assert "Metadata" in cfn_yaml.load(with_metadata)["Resources"]["ApiLogs"]
    assert digest(TEMPLATE, folder) == digest(with_metadata, folder)


def test_the_fingerprint_itself_does_not_change_it(folder):
    first = digest(TEMPLATE, folder)
    assert digest(fp.with_fingerprint(TEMPLATE, first), folder) == first


def test_meaning_strips_metadata_only():
    template = cfn_yaml.load(TEMPLATE)
    meaning = fp.meaning(template)
    assert "Metadata" not in meaning
    assert set(meaning) == set(template) - {"Metadata"}
    assert meaning["Resources"]["Api"]["Properties"] == template["Resources"]["Api"]["Properties"]
    assert "Metadata" in template  # the input is left as it was


# --- code_dirs ----------------------------------------------------------------------------------

def test_code_dirs(tmp_path):
    template = {"Resources": {
        "A": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "src/api"}},
        "B": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "./src/api/"}},  # the same folder
        "C": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "layers/common"}},
        "D": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "s3://bucket/key.zip"}},
        "E": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": {"Bucket": "b", "Key": "k"}}},
        "F": None,
    }}
    assert fp.code_dirs(template, tmp_path) == sorted([(tmp_path / "src" / "api").resolve(), (tmp_path / "layers" / "common").resolve()])


# --- with_fingerprint / fingerprint_of ------------------------------------------------------------

def test_with_fingerprint_joins_an_existing_metadata_block():
    text = fp.with_fingerprint(TEMPLATE, "0a1b2c")
    parsed = cfn_yaml.load(text)
    assert parsed["Metadata"] == {"DeployFingerprint": "0a1b2c", "StackRole": "stateless"}
    assert text.count("Metadata:") == 1
    assert fp.fingerprint_of(parsed) == "0a1b2c"
    # everything else is kept as it was
    assert {k: v for k, v in parsed.items() if k != "Metadata"} == {k: v for k, v in cfn_yaml.load(TEMPLATE).items() if k != "Metadata"}


def test_with_fingerprint_adds_a_metadata_block():
    text = TEMPLATE.replace("Metadata:\n  StackRole: stateless   # read by the lint rules\n", "")
    out = fp.with_fingerprint(text, "deadbeef")
    parsed = cfn_yaml.load(out)
    assert parsed["Metadata"] == {"DeployFingerprint": "deadbeef"}
    assert parsed["Resources"] == cfn_yaml.load(text)["Resources"]
    assert fp.fingerprint_of(parsed) == "deadbeef"


def test_with_fingerprint_ignores_a_resource_metadata_block():
    text = ("Resources:\n  A:\n    Type: AWS::SNS::Topic\n    Metadata:\n      x: 1\n")
    parsed = cfn_yaml.load(fp.with_fingerprint(text, "abc"))
    assert parsed["Metadata"] == {"DeployFingerprint": "abc"}
    assert parsed["Resources"]["A"]["Metadata"] == {"x": 1}


@pytest.mark.parametrize("metadata", [
    "Metadata:\n    StackRole: stateless\n",
    "Metadata:   # the stack's role\n  StackRole: stateless\n",
    "Metadata: {StackRole: stateless}\n",
], ids=["four-space-indent", "comment-on-the-key", "flow-mapping"])
def test_with_fingerprint_keeps_other_metadata_layouts(metadata):
    text = metadata + "Resources:\n  T:\n    Type: AWS::SNS::Topic\n"
    parsed = cfn_yaml.load(fp.with_fingerprint(text, "abc"))
    assert parsed["Metadata"] == {"DeployFingerprint": "abc", "StackRole": "stateless"}


@pytest.mark.parametrize("template,expected", [
    ({"Metadata": {"DeployFingerprint": "0123abcd"}}, "0123abcd"),
    ({"Metadata": {"StackRole": "stateless"}}, None),
    ({"Metadata": {"DeployFingerprint": ""}}, None),
    ({"Metadata": "not a mapping"}, None),
    ({}, None),
])
def test_fingerprint_of(template, expected):
    assert fp.fingerprint_of(template) == expected
