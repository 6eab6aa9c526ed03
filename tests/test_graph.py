"""The export/import graph and the waves, as pure functions."""
import pytest

from tooling.render import graph
from tooling.errors import UserError


def node(key, exports=(), imports=()):
    return graph.StackNode(key=key, name=f"app-{key}", exports={e: e for e in exports}, imports=sorted(imports))


def test_resolve_sub_with_parameters_and_pseudo_parameters():
    variables = {"StorageStackName": "app-storage", "AWS::StackName": "app-ops", "AWS::Region": "eu-west-1"}
    assert graph.resolve({"Fn::Sub": "${StorageStackName}-TableArn"}, variables, "t") == "app-storage-TableArn"
    assert graph.resolve({"Fn::Sub": ["${X}-${AWS::Region}", {"X": {"Ref": "StorageStackName"}}]}, variables, "t") == "app-storage-eu-west-1"
    assert graph.resolve({"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, "Id"]]}, variables, "t") == "app-ops-Id"
    with pytest.raises(UserError, match=r"cannot resolve \$\{Missing\}"):
        graph.resolve({"Fn::Sub": "${Missing}-x"}, variables, "t")
    with pytest.raises(UserError, match="cannot resolve"):
        graph.resolve({"Fn::GetAtt": ["A", "B"]}, variables, "t")


def test_stack_node_reads_exports_and_imports_from_the_template():
    template = {
        "Parameters": {"StorageStackName": {"Type": "String", "Default": "app-storage"}},
        "Resources": {"R": {"Type": "X", "Properties": {"A": {"Fn::ImportValue": {"Fn::Sub": "${StorageStackName}-Bucket"}},
                                                        "B": [{"Fn::ImportValue": "app-storage-Table"}]}}},
        "Outputs": {"Id": {"Value": "1", "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-Id"}}}},
    }
    result = graph.stack_node("ops", "app-ops", template, "123456789012", "eu-west-1", "ops.yaml")
    assert result.exports == {"app-ops-Id": "Id"}
    assert result.imports == ["app-storage-Bucket", "app-storage-Table"]


def test_link_and_waves():
    nodes = [node("storage", exports=["s-a", "s-b"]), node("frontend", exports=["f-id"], imports=["s-a"]),
             node("operations", imports=["s-b", "f-id"]), node("webhook")]
    depends_on = graph.link(nodes)
    assert depends_on == {"storage": [], "frontend": ["storage"], "operations": ["frontend", "storage"], "webhook": []}
    order = ["storage", "frontend", "webhook", "operations"]
    assert graph.waves(depends_on, order, first="storage") == [["storage"], ["frontend", "webhook"], ["operations"]]
    assert graph.waves(depends_on, order) == [["storage", "webhook"], ["frontend"], ["operations"]]
    assert graph.dependents(depends_on, "frontend") == {"operations"}
    assert graph.dependents(depends_on, "storage") == {"frontend", "operations"}


def test_import_nobody_exports():
    with pytest.raises(UserError, match="stack frontend: imports 'nope', which no stack exports"):
        graph.link([node("storage", exports=["s"]), node("frontend", imports=["nope"])])


def test_export_declared_twice():
    with pytest.raises(UserError, match="declared by both storage and frontend"):
        graph.link([node("storage", exports=["x"]), node("frontend", exports=["x"])])


def test_cycle_is_named():
    depends_on = {"storage": [], "a": ["storage", "b"], "b": ["c"], "c": ["a"]}
    with pytest.raises(UserError, match=r"cycle: a -> b -> c -> a"):
        graph.waves(depends_on, ["storage", "a", "b", "c"], first="storage")


def test_first_stack_may_not_import():
    with pytest.raises(UserError, match="stack storage must import nothing"):
        graph.waves({"storage": ["a"], "a": []}, ["storage", "a"], first="storage")
