"""What every deploy.py subcommand starts from: the environment, the region, the
caller's account, and a current render (manifest.json) of that environment."""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..aws import session
from ..errors import UserError
from ..paths import ROOT
from ..render import cfn_yaml, environment, naming, rendering


@dataclass
class Workspace:
    env: str
    region: str
    account_id: str
    out_dir: Path
    manifest: dict
    local: bool
    _texts: dict = field(default_factory=dict, repr=False)
    _parsed: dict = field(default_factory=dict, repr=False)

    @functools.cached_property
    def stacks(self) -> dict[str, dict]:
        return {stack["key"]: stack for stack in self.manifest["stacks"]}

    @functools.cached_property
    def stack_names(self) -> dict[str, str]:
        """stack key -> stack name."""
        return {key: stack["name"] for key, stack in self.stacks.items()}

    @functools.cached_property
    def depends_on(self) -> dict[str, list[str]]:
        return {stack["key"]: stack["depends_on"] for stack in self.manifest["stacks"]}

    def template_path(self, key: str) -> Path:
        return self.out_dir / self.stacks[key]["template"]

    def template_text(self, key: str) -> str:
        """The rendered template, read once per command."""
        if key not in self._texts:
            self._texts[key] = self.template_path(key).read_text(encoding="utf-8")
        return self._texts[key]

    def template(self, key: str) -> dict:
        """The rendered template, parsed once per command: pass this along, never re-parse."""
        if key not in self._parsed:
            self._parsed[key] = cfn_yaml.load(self.template_text(key))
        return self._parsed[key]

    def region_of(self, key: str) -> str:
        """The region the stack deploys to (the edge stack's is us-east-1)."""
        return self.stacks[key].get("region", self.region)

    def stack_policy(self) -> dict:
        return json.loads((self.out_dir / self.manifest["stack_policy"]).read_text())



def out_dir_for(env: str, local: bool) -> Path:
    # A local render lives apart from real-account renders: different account, same depth.
    return ROOT / "build" / (f"local-{env}" if local else env)


def is_stale(out_dir: Path, env: str) -> bool:
    manifest = out_dir / rendering.MANIFEST
    if not manifest.exists():
        return True
    rendered_at = manifest.stat().st_mtime
    return any(source.exists() and source.stat().st_mtime > rendered_at for source in rendering.sources(env))


def open_workspace(env: str, local: bool, region: str | None = None, log=print) -> Workspace:
    """Check the inputs before anything changes; render when missing or stale."""
    environment.load(env)  # unknown / malformed environment: status 2 here
    region = naming.check_region(region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                                 or environment.load(env)["region"])
    account_id = session.caller_identity(region)["Account"]
    out_dir = out_dir_for(env, local)
    if is_stale(out_dir, env):
        log(f"render: {env} for {account_id}/{region} -> {out_dir.relative_to(ROOT)} (missing or older than its sources)")
        rendering.render_environment(env, account_id, region, out_dir)
    manifest = json.loads((out_dir / rendering.MANIFEST).read_text())
    if manifest["account_id"] != account_id:
        raise UserError(f"{(out_dir / rendering.MANIFEST).relative_to(ROOT)}: rendered for account {manifest['account_id']}, "
                        f"but the credentials are for {account_id} (re-render: python render.py --env {env} --account-id {account_id}"
                        f"{' --out ' + str(out_dir.relative_to(ROOT)) if local else ''})")
    if manifest["region"] != region:
        raise UserError(f"{(out_dir / rendering.MANIFEST).relative_to(ROOT)}: rendered for region {manifest['region']}, but the target is {region}")
    return Workspace(env=env, region=region, account_id=account_id, out_dir=out_dir, manifest=manifest, local=local)
