"""taskcat's own command line (`taskcat test run ...`), with four additions made
through botocore's and taskcat's own hooks. Run with taskcat's Python by
ci/taskcat_run.py; TASKCAT_MANIFEST names the render's manifest.json.

1. Order. taskcat starts every test at once and its tests do not chain, but these
   import from one another (frontend-pipeline from frontend, operations from all).
   Each CreateStack waits until the stacks of this run it imports from are complete;
   each DeleteStack waits until the stacks of this run that import from it are gone.
   The order is the render's (manifest.json: depends_on).
2. Only the rendered templates are uploaded (build/taskcat/), not the whole repository.
3. On the local AWS (AWS_ENDPOINT_URL set): taskcat hands CloudFormation a
   virtual-host TemplateURL (https://<bucket>.s3.<region>.amazonaws.com/<key>), which
   the emulator cannot fetch; it is rewritten path-style, <endpoint>/<bucket>/<key>.
4. The report's stylesheet, which taskcat fetches from the internet, is served from
   ci/taskcat-report.css.
5. taskcat 0.9.58 leaves its staging bucket behind: its cleanup asks for the run's
   buckets again, which creates a new, empty one and deletes that instead. The run's
   buckets are asked for once, so the cleanup empties and deletes the one it used.
   (Test stacks, report and exit status are taskcat's own.)"""
from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
UPLOADED = "build/taskcat"
WAIT_SECONDS = float(os.environ.get("TASKCAT_ORDER_TIMEOUT", "1800"))
VIRTUAL_HOST = re.compile(r"^https://(?P<bucket>[^./]+(?:\.[^./]+)*?)\.s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com(?:\.cn)?/(?P<key>.+)$")
COMPLETE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE"}
_print_lock = threading.Lock()


def say(text: str) -> None:
    with _print_lock:
        print(f"taskcat-launch: {text}", file=sys.stderr, flush=True)


def path_style(url: str, endpoint: str) -> str:
    match = VIRTUAL_HOST.match(url)
    return f"{endpoint.rstrip('/')}/{match['bucket']}/{match['key']}" if match else url


FILLED_AT_CREATE = "FILLED_AT_CREATE"  # in .taskcat.yml: a value this launcher reads from another stack


class Order:
    """Which stacks of this run must be complete before a create, or gone before a delete."""

    def __init__(self, manifest: dict, selected: set[str]):
        names = {s["key"]: s["name"] for s in manifest["stacks"]}
        self.key_of = {name: key for key, name in names.items()}
        self.sources = {s["key"]: s.get("parameters") or {} for s in manifest["stacks"]}
        self.names = names
        self.depends_on = {s["key"]: [d for d in s["depends_on"] if names[d] in selected] for s in manifest["stacks"]}
        self._cfn = None

    def cfn(self):
        if self._cfn is None:
            import boto3

            self._cfn = boto3.client("cloudformation")
        return self._cfn

    def status(self, name: str) -> str | None:
        try:
            return self.cfn().describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        except Exception as exc:  # noqa: BLE001 - "does not exist" is the common answer
            if "does not exist" in str(exc):
                return None
            raise

    def wait(self, what: str, names: list[str], done) -> None:
        if not names:
            return
        say(f"{what} waits for {', '.join(names)}")
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            states = {name: self.status(name) for name in names}
            if all(done(state) for state in states.values()):
                return
            time.sleep(2)
        say(f"{what}: still waiting after {WAIT_SECONDS:.0f}s ({states}); going on")

    def before_create(self, params, **_):
        name = params.get("StackName", "")
        key = self.key_of.get(name)
        if key:
            # Complete, or ended another way (its failure is reported); absent means not started yet.
            self.wait(f"create {name}", [self.names[d] for d in self.depends_on[key]],
                      lambda state: state is not None and not state.endswith("_IN_PROGRESS"))
            self.fill_parameters(key, params)

    def fill_parameters(self, key: str, params: dict) -> None:
        """As deploy.py does: parameters that come from another stack's output (exports do
        not cross regions), read from that stack of this run. .taskcat.yml gives such a
        parameter the value FILLED_AT_CREATE (taskcat refuses a test with a parameter that
        has no value before it starts); any other value a test gives is kept."""
        given = {p["ParameterKey"]: p for p in params.get("Parameters", [])}
        for parameter, source in self.sources[key].items():
            if parameter in given and given[parameter].get("ParameterValue") not in (FILLED_AT_CREATE, ""):
                continue
            try:
                stack = self.cfn().describe_stacks(StackName=self.names[source["stack"]])["Stacks"][0]
            except Exception as exc:  # noqa: BLE001 - a missing source leaves the parameter to its default
                say(f"create {params.get('StackName')}: {parameter} has no source ({exc})")
                continue
            value = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}.get(source["output"])
            if value is None:
                continue
            if parameter in given:
                given[parameter]["ParameterValue"] = value
            else:
                params.setdefault("Parameters", []).append({"ParameterKey": parameter, "ParameterValue": value})

    def before_delete(self, params, **_):
        name = params.get("StackName", "").split(":stack/")[-1].split("/")[0]
        key = self.key_of.get(name)
        if key:
            importers = [self.names[k] for k, deps in self.depends_on.items() if key in deps]
            self.wait(f"delete {name}", importers, lambda state: state in (None, "DELETE_COMPLETE") or state == "DELETE_FAILED")


def selected_stacks(config: Path, argv: list[str]) -> set[str]:
    import yaml

    tests = yaml.safe_load(config.read_text())["tests"]
    chosen = None
    for i, arg in enumerate(argv):
        if arg in ("-t", "--test-names") and i + 1 < len(argv):
            chosen = set(argv[i + 1].split(","))
        elif arg.startswith("--test-names="):
            chosen = set(arg.split("=", 1)[1].split(","))
    return {t["stack_name"] for name, t in tests.items() if chosen is None or name in chosen}


def install(manifest: dict, selected: set[str], endpoint: str | None) -> None:
    import botocore.handlers

    order = Order(manifest, selected)

    def create(params, **kwargs):
        order.before_create(params)
        if endpoint and params.get("TemplateURL"):
            params["TemplateURL"] = path_style(params["TemplateURL"], endpoint)

    for operation in ("CreateStack", "UpdateStack", "CreateChangeSet"):
        botocore.handlers.BUILTIN_HANDLERS.append((f"before-parameter-build.cloudformation.{operation}", create))
    botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build.cloudformation.DeleteStack", order.before_delete))

    from taskcat import _generate_reports
    from taskcat._config import Config
    from taskcat._s3_sync import S3Sync

    get_buckets = Config.get_buckets

    def buckets_once(self, boto3_cache=None):
        if not hasattr(self, "_run_buckets"):
            self._run_buckets = get_buckets(self, boto3_cache)
        return self._run_buckets

    Config.get_buckets = buckets_once

    def rendered_templates_only(self, path, include_checksums=True):
        root, files = os.path.abspath(path), {}
        for directory, _, names in os.walk(os.path.join(root, UPLOADED)):
            files.update(self._iterate_files(names, directory, include_checksums, os.path.relpath(directory, root) + "/"))
        return files

    S3Sync._get_local_file_list = rendered_templates_only

    class OfflineRequests:
        """What the report module asks of `requests`: its stylesheet, from this repository."""

        @staticmethod
        def get(url, timeout=None):
            class Answer:
                text = (HERE / "taskcat-report.css").read_text()
            return Answer()

    _generate_reports.requests = OfflineRequests


def main() -> int:
    manifest = json.loads(Path(os.environ["TASKCAT_MANIFEST"]).read_text())
    argv = sys.argv[1:]
    install(manifest, selected_stacks(Path(".taskcat.yml"), argv), os.environ.get("AWS_ENDPOINT_URL"))
    from taskcat._cli import main as taskcat

    sys.argv = ["taskcat", *argv]
    taskcat()
    return 0


if __name__ == "__main__":
    sys.exit(main())
