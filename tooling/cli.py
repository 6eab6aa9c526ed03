"""deploy.py's command line: the arguments, one function per subcommand, the exit
status. The work is done in tooling.deploy; this module only wires and prints.

Exit status: 0 done, 1 a deploy failed (or AWS failed), 2 bad input (nothing
changed), 3 a blocking finding (nothing changed), 4 busy (another run holds the
environment, or a stack is in progress, and --no-wait was given; nothing changed),
130/143 interrupted (SIGINT/SIGTERM)."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from contextlib import contextmanager

from .errors import UserError
from .paths import ROOT
from .render import environment, naming

OVERRIDE_FLAGS = {
    "--allow-orphans": "take over resources that exist but no stack owns into the stack that declares them "
                       "(CloudFormation's ImportExistingResources); the finding names each one",
    "--allow-unknown": "go on where check could not establish something (a lookup that failed, a type it cannot look up)",
}
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")
EXIT = ("Exit status: 0 done, 1 a deploy failed, 2 bad input (nothing changed), 3 a blocking finding (nothing changed), "
        "4 busy: another run holds the environment or CloudFormation is still working on a stack, with --no-wait (nothing changed; "
        "try again), 130/143 interrupted by Ctrl-C/SIGTERM (the summary names what CloudFormation still works on).")
MUTATING = ("apply", "adopt", "migrate", "rename", "destroy")
NO_WAIT = ("refuse with exit status 4 instead of waiting when another run holds this environment's lock "
           "or CloudFormation is still working on a stack")


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--env", required=True, help=f"environment (known: {', '.join(environment.available())})")
    common.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the environment file)")
    common.add_argument("--local", action="store_true",
                        help="target the embedded local AWS: AWS_ENDPOINT_URL if set, else start ministack on a free loopback port")
    common.add_argument("--keep", action="store_true", help="with --local: leave a started emulator running and print how to reach it")
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout (progress goes to stderr)")

    parser = argparse.ArgumentParser(prog="deploy.py", description="Deploy the rendered stacks of one environment, safely and in order.",
                                     epilog=EXIT)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan = commands.add_parser("plan", parents=[common], epilog=EXIT,
                               help="the waves, and what each stack's deploy would change (change sets, read and deleted, never "
                                    "executed; with --out kept, for apply --plan)")
    plan.add_argument("--out", metavar="FILE", help="keep the change sets and save the plan (JSON) for apply --plan FILE")
    plan.add_argument("--markdown", action="store_true", help="print the plan as a pull-request comment on stdout")
    for flag, what in OVERRIDE_FLAGS.items():
        plan.add_argument(flag, action="store_true", help=f"override check (recorded in the plan for apply --plan): {what}")
    apply = commands.add_parser("apply", parents=[common], epilog=EXIT,
                                help="check, then deploy wave by wave through inspected change sets; protect the storage stack")
    apply.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    apply.add_argument("--only", nargs="+", metavar="KEY", help=f"deploy (and check) only these stacks ({', '.join(naming.STACK_KEYS)})")
    apply.add_argument("--plan", metavar="FILE", help="execute exactly the change sets of a plan saved by plan --out "
                                                      "(refused, exit 3, if anything changed since)")
    apply.add_argument("--report", metavar="FILE", help="afterwards, write the report page (HTML) to FILE")
    for flag, what in OVERRIDE_FLAGS.items():
        apply.add_argument(flag, action="store_true", help=f"override check: {what}")
    apply.add_argument("--role-arn", metavar="ARN",
                       help="the CloudFormation service role that creates the stacks' resources (passed as RoleARN); "
                            "the caller needs only iam:PassRole on it")
    check = commands.add_parser("check", parents=[common], epilog=EXIT,
                                help="before anything changes: stack states, name collisions, exports in use, stateful replacements, "
                                     "change sets CloudFormation refuses, storage's protections read back (exit 3 if any blocks)")
    check.add_argument("--drift", action="store_true", help="also run CloudFormation's drift detection on every stack")
    adopt = commands.add_parser("adopt", parents=[common], epilog=EXIT,
                                help="import orphaned storage resources (buckets, table) into the storage stack, data kept")
    adopt.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    status = commands.add_parser("status", parents=[common], epilog=EXIT, help="a table of the stacks: state, protection, last update, outputs")
    status.add_argument("--wait", action="store_true", help="first wait (bounded, a line per change) until CloudFormation works on none of them")
    drift = commands.add_parser("drift", parents=[common], epilog=EXIT,
                                help="CloudFormation's drift detection on every stack, and storage's protections read back "
                                     "(exit 3 if storage drifted)")
    drift.add_argument("--revert", action="store_true",
                       help="put storage's protections back to its deployed template (on AWS a REVERT_DRIFT change set; "
                            "on the local AWS the S3 and DynamoDB calls), then read them back")
    drift.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    report = commands.add_parser("report", parents=[common], epilog=EXIT,
                                 help="one self-contained HTML page: the stack graph, the timeline of the last deploy, the findings")
    report.add_argument("--out", metavar="FILE", help="where to write it (default: the render folder's report.html)")
    migrate = commands.add_parser("migrate", parents=[common], epilog=EXIT,
                                  help="move the buckets and the table out of the stacks of the old layout into the storage stack, data kept")
    migrate.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    migrate.add_argument("--dry-run", action="store_true", help="print the resources, their stacks and every step; change nothing")
    migrate.add_argument("--delete-old", nargs="+", metavar="STACK",
                         help="delete these old stacks, after checking that they hold no stateful resource")
    migrate.add_argument("--stop-after", choices=("untag", "retain", "remove", "import"), help=argparse.SUPPRESS)  # the resume test
    rename = commands.add_parser("rename", parents=[common], epilog=EXIT,
                                 help="move buckets, the table or the key of the storage stack under the logical ids the render now "
                                      "gives them (retain, remove, import), data and settings kept")
    rename.add_argument("pairs", nargs="+", metavar="OLD=NEW", help="the deployed logical id and the render's new one")
    rename.add_argument("--dry-run", action="store_true", help="print each resource and every step; change nothing")
    rename.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    rename.add_argument("--stop-after", choices=("guard", "retain", "remove", "import"), help=argparse.SUPPRESS)  # the resume test
    destroy = commands.add_parser("destroy", parents=[common], epilog=EXIT,
                                  help="delete the stateless stacks in reverse wave order (never empties a bucket)")
    destroy.add_argument("--no-wait", action="store_true", help=NO_WAIT)
    destroy.add_argument("--include-storage", action="store_true",
                         help="also delete the storage stack, only if you already turned its termination protection off; its resources are retained")
    return parser.parse_args(argv)


@contextmanager
def target(args, log):
    """The AWS to talk to: real, an emulator at AWS_ENDPOINT_URL, or one started here."""
    if not args.local:
        yield None
        return
    from .aws import emulator

    for key, value in emulator.LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    if os.environ.get("AWS_ENDPOINT_URL"):
        log(f"local AWS: using AWS_ENDPOINT_URL={os.environ['AWS_ENDPOINT_URL']}")
        yield None
        return
    started = emulator.Emulator.start(ROOT / "build" / "local-aws")
    os.environ["AWS_ENDPOINT_URL"] = started.endpoint
    log(f"local AWS: ministack started on {started.endpoint} (pid {started.pid})")
    try:
        yield started
    finally:
        if args.keep:
            (ROOT / "build" / "local-aws" / "ministack.pid").write_text(f"{started.pid}\n")
            log(f"local AWS: left running (--keep). Reach it with:\n"
                f"  export AWS_ENDPOINT_URL={started.endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION={os.environ.get('AWS_REGION', 'us-east-1')}\n"
                f"  stop it with: kill -TERM -{started.pid}")
        else:
            started.stop()
            log(f"local AWS: stopped (pid {started.pid})")


def emit_json(data) -> None:
    print(json.dumps(data, indent=2, default=str), file=sys.stdout, flush=True)


def waves_line(ws) -> str:
    return " -> ".join("[" + ", ".join(wave) + "]" for wave in ws.manifest["waves"])


# --- plan ----------------------------------------------------------------------------------

def given_overrides(args) -> set[str]:
    return {flag for flag in OVERRIDE_FLAGS if getattr(args, flag.lstrip("-").replace("-", "_"), False)}


def plan(ws, args, log) -> int:
    from .aws.sam_runner import SamRunner
    from .deploy import planfile
    from .deploy.execute.apply import Options
    from .deploy.gate import check, planning
    from .deploy.gate.findings import command
    from .deploy.report import markdown
    from .deploy.report.plan import document

    overrides = given_overrides(args)
    log(f"plan: {ws.env} in {ws.account_id}/{ws.region}; waves {waves_line(ws)}")
    lock_note(ws, log)
    sam = SamRunner().start()
    try:
        report = check.run_check(ws, list(ws.stacks))
        orphans = Options.given(overrides, report).orphans if args.out else {}
        planned = planning.make(ws, report, sam, keep=bool(args.out), orphans=orphans)
    finally:
        sam.stop()
    result = document(ws, report, planned, overrides, kept=bool(args.out))
    entries = {e["key"]: e for e in result["stacks"]}
    for number, wave in enumerate(ws.manifest["waves"], start=1):
        log(f"wave {number}:")
        for key in wave:
            entry = entries[key]
            if entry["action"] in ("create", "update") and entry.get("counts") is not None:
                log(f"  {key}: {entry['action']} ({', '.join(f'{n} {label}' for label, n in sorted(entry['counts'].items()))})")
                for change in entry["changes"]:
                    log(f"      {change['action']:<9} {change['logical_id']} [{change['type']}]")
                if entry["follows"]:
                    log(f"      and {len(entry['follows'])} resource(s) re-evaluated because they reference a changed one: "
                        f"{', '.join(c['logical_id'] for c in entry['follows'])}")
                for note in entry.get("schema_notes", []):
                    log(f"      note: {note['text']}")
            else:
                log(f"  {key}: {entry['action']}{': ' + entry['reason'] if entry.get('reason') else ''}")
    blocking = planning.blocking_findings(result)
    if blocking:
        log(f"plan: apply would refuse: {len(blocking)} blocking finding(s) (see: {command(ws.env, ws.local, 'check')})")
    if args.out:
        path = planfile.write(args.out, result)
        kept = planfile.planned_change_sets(result)
        later = planfile.known_after_apply(result)
        if planfile.has_changes(result):
            log(f"plan: saved to {path}: {len(kept)} change set(s) kept"
                + (f", {len(later)} stack(s) known after apply ({', '.join(later)})" if later else ""))
            log(f"plan: apply exactly this plan with: {command(ws.env, ws.local, 'apply', '--plan', str(args.out))}")
        else:
            log(f"plan: saved to {path}: no changes")
    if args.markdown:
        print(markdown.render(result), end="", flush=True)
    if args.json:
        emit_json(result)
    return 0


# --- check ---------------------------------------------------------------------------------

def check_command(ws, args, log) -> int:
    from .aws.sam_runner import SamRunner
    from .deploy.gate import check

    log(f"check: {ws.env} in {ws.account_id}/{ws.region}")
    lock_note(ws, log)
    sam = SamRunner()
    try:
        report = check.run_check(ws, list(ws.stacks), log, change_sets=True, sam=sam, detect_drift=args.drift)
    finally:
        sam.stop()
    blocking = [f for f in report.findings if f.blocking]
    check.print_findings(report.findings, log, report.notes)
    if args.json:
        emit_json({"env": ws.env, "ok": not blocking, "findings": [f.as_json() for f in report.findings], **report.as_json()})
    return 3 if blocking else 0


# --- apply ---------------------------------------------------------------------------------

def check_dependencies(ws, only: list[str]) -> None:
    """What the selected stacks import must be live now: exported by a stack in a
    state whose exports are live, and present among the region's exports."""
    from .aws import cloudformation as cfn
    from .deploy import stacks
    from .deploy.gate.findings import command

    exports = None
    for key in only:
        for dep in ws.stacks[key]["depends_on"]:
            if dep in only:
                continue
            _, state = stacks.current(ws.region_of(dep), ws.stacks[dep]["name"])
            if not state.exports_live:
                raise UserError(f"--only {key}: needs stack {dep} deployed first ({state.status})")
            exports = cfn.list_exports(ws.region) if exports is None else exports
            wanted = [e for e in ws.stacks[key]["imports"] if e in ws.stacks[dep]["exports"]]
            missing = [e for e in wanted if e not in exports]
            if missing:
                raise UserError(f"--only {key}: needs {', '.join(missing)} from stack {dep}, which does not export it yet "
                                f"(deploy {dep} first: {command(ws.env, ws.local, 'apply', '--only', dep)})")


def apply(ws, args, log) -> int:
    from .aws.sam_runner import SamRunner
    from .aws import cloudformation

    if args.role_arn is not None:
        if not ROLE_ARN.match(args.role_arn) or args.role_arn.split(":")[4] != ws.account_id:
            raise UserError(f"--role-arn {args.role_arn!r}: not the ARN of an IAM role of account {ws.account_id} "
                            f"(arn:aws:iam::{ws.account_id}:role/...)")
        cloudformation.use_service_role(args.role_arn)
    from .deploy import planfile

    only = list(args.only or [])
    selected = only or list(ws.stacks)
    if only:
        check_dependencies(ws, only)
    plan_doc = planfile.load(args.plan) if args.plan else None
    log(f"apply: {ws.env} in {ws.account_id}/{ws.region}; waves {waves_line(ws)}" + (f"; only {', '.join(only)}" if only else "")
        + (f"; the plan {args.plan}" if plan_doc else ""))
    sam = SamRunner()
    sam_keys = selected if plan_doc is None else list(planfile.known_after_apply(plan_doc))
    if any(ws.stacks[k].get("sam") for k in sam_keys if k in ws.stacks):
        sam.start()  # imports the SAM CLI in the background while the check runs (stopped at once if unused)
    try:
        with exclusive(ws, args, log, selected) as session:
            return _apply(ws, args, log, selected, sam, session, plan_doc)
    finally:
        sam.stop()


@contextmanager
def exclusive(ws, args, log, keys=None):
    """The environment's lock, stacks in progress waited for, stale change sets deleted."""
    from .deploy.execute import apply as applying
    from .deploy.execute import converge

    session = converge.Session(ws, args.command, log, wait=not getattr(args, "no_wait", False), poll=applying.POLL_SECONDS)
    try:
        yield session.start(keys or list(ws.stacks))
    finally:
        session.end()


def lock_note(ws, log) -> None:
    """plan, check and status take no lock, but say when a run holds one."""
    from .deploy.execute import lock

    holder = lock.peek(ws)
    if holder:
        log(f"note: {holder.describe()} holds this environment's deploy lock; what follows may change under it")


def refuse_stale_plan(ws, args, log, plan_doc) -> int | None:
    """apply --plan: 3 when the plan no longer holds, 0 when it has nothing to do, None to go on."""
    from .deploy import planfile
    from .deploy.gate import planning

    extra = sorted(given_overrides(args) - set(plan_doc["overrides"]))
    if extra:
        raise UserError(f"{extra[0]}: the plan {args.plan} was made without it; make the plan with it (plan --out FILE {extra[0]})")
    problems = planning.verify(ws, plan_doc)
    if problems:
        log(f"apply: refused: the plan {args.plan} no longer holds; nothing was executed")
        for problem in problems:
            log(f"  {problem}")
        log(f"apply: make a new plan and review it ({command_line(ws, 'plan', '--out', args.plan)})")
        if args.json:
            emit_json({"env": ws.env, "ok": False, "stale_plan": problems, "stacks": []})
        return 3
    if not planfile.has_changes(plan_doc):
        log(f"apply: the plan {args.plan} has no changes; nothing to do, nothing was executed")
        if args.json:
            emit_json({"env": ws.env, "ok": True, "stacks": []})
        return 0
    return None


def command_line(ws, *words) -> str:
    from .deploy.gate.findings import command

    return command(ws.env, ws.local, *words)


def _apply(ws, args, log, selected, sam, session, plan_doc=None) -> int:
    from .deploy import planfile
    from .deploy.execute import apply as applying
    from .deploy.gate import check, findings
    from .deploy.execute import ledger, protection
    from .deploy.progress import Progress

    protection.restore_first(ws, log)
    overrides = given_overrides(args)
    if plan_doc is not None:
        stop = refuse_stale_plan(ws, args, log, plan_doc)
        if stop is not None:
            return stop
        overrides = set(plan_doc["overrides"])
    report = check.run_check(ws, selected, log)
    blocking, overridden, notes = findings.by_kind(report.findings, overrides)
    for finding in overridden:
        log(f"check: OVERRIDDEN by {finding.override}: [{finding.kind}] {finding.stack}: {finding.subject}: {finding.detail}")
    if blocking:
        check.print_findings(blocking + notes, log, report.notes)
        log("apply: refused before any change (fix the findings; the kinds that have an override name it)")
        if args.json:
            emit_json({"env": ws.env, "ok": False, "refused": [f.as_json() for f in blocking], "stacks": []})
        return 3
    for line in report.notes:
        log(f"  note: {line}")
    options = applying.Options.given(overrides, report)
    options.before_wave = session.retry_lock
    if plan_doc is not None:
        options.planned, options.after_apply = planfile.planned_change_sets(plan_doc), planfile.known_after_apply(plan_doc)
        log(f"apply: executing the plan's {len(options.planned)} change set(s) as reviewed"
            + (f"; known after apply: {', '.join(options.after_apply)}" if options.after_apply else ""))
    progress = Progress(stream=sys.stderr if args.json else sys.stdout)
    outcomes = applying.run_apply(ws, report, selected, progress, sam, options)
    failed = [o for o in outcomes if o.result == "failed"]
    refused = [o for o in outcomes if o.result == "refused"]
    log("")
    log("summary:")
    for outcome in outcomes:
        if outcome.result != "not-selected":
            log(f"  {outcome.key:<18} {applying.describe(outcome)}")
            for note in outcome.notes:
                log(f"  {'':<18} note: {note}")
    note = applying.local_note(outcomes) if ws.local else None
    if note:
        log(note)
    if ws.local:
        print_stand_ins(ws, [o.key for o in outcomes if o.result in ("deployed", "unchanged")], log)
    for outcome in refused:
        check.print_findings(outcome.refused, log)
    if interrupted():
        log("apply: INTERRUPTED; " + ", ".join(f"{o.key} {o.result}" for o in outcomes
                                                if o.result in ("in-progress", "interrupted", "not-started")))
    elif failed or refused:
        first = (failed or refused)[0]
        log(f"apply: FAILED at stack {first.key} ({ws.stacks[first.key]['name']}); later waves were not deployed")
        ledger.print_ledger([entry for o in failed for entry in o.retained], log)
    else:
        log("apply: done")
    if args.report:
        from .deploy.report import page

        path = page.write(ws, args.report, report.findings, [o.as_json() for o in outcomes])
        log(f"apply: report written to {path}")
    if args.json:
        emit_json({"env": ws.env, "ok": not (failed or refused), "stacks": [o.as_json() for o in outcomes]})
    return 1 if failed else 3 if refused else 0


# --- status --------------------------------------------------------------------------------

def interrupted() -> bool:
    from .deploy import interrupt

    return interrupt.stopped()


def report_interrupted(ws, log) -> None:
    """After an interrupt: what CloudFormation still works on, and how to follow it."""
    from .deploy.execute import converge
    from .deploy.gate.findings import command

    rows = converge.in_progress(ws)
    if rows:
        log("interrupted: CloudFormation is still working on:")
        for key, name, status in rows:
            log(f"  {key:<18} {status:<32} {name}")
        log(f"  follow them: {command(ws.env, ws.local, 'status', '--wait')}")
    else:
        log("interrupted: CloudFormation is working on none of this environment's stacks")
    log(f"  finish the job: {command(ws.env, ws.local, 'apply')} (it waits for stacks in progress and deletes stale change sets)")


def print_stand_ins(ws, keys, log) -> None:
    """On the local AWS: which resources a stand-in provides, and what that does and does not prove."""
    from .deploy import local

    found = local.stand_ins(ws, keys)
    if not found:
        return
    count = sum(len(r) for r in found.values())
    log(f"stand-ins: {count} resource(s) on the local AWS are provided by the project's stand-ins "
        f"(tooling/aws/standins), not by the emulator:")
    for key, resources in found.items():
        log(f"  {key:<18} " + ", ".join(f"{logical_id} [{kind}]" for logical_id, kind in resources))
    for line in local.stand_in_legend(found):
        log(f"  {line}")


def status(ws, args, log) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from .deploy import stacks
    from .deploy.execute import converge
    from .deploy.gate import drift

    if args.wait:
        converge.wait_for_busy(ws, list(ws.stacks), log, wait=True, poll=float(os.environ.get("DEPLOY_POLL_SECONDS", "2")))
    lock_note(ws, log)
    protections = drift.findings_of(ws, drift.read_back(ws))

    def row(key):
        name, region = ws.stacks[key]["name"], ws.region_of(key)
        stack, state = stacks.current(region, name)
        return {
            "key": key, "name": name, "region": region,
            "status": stack["StackStatus"] if stack else "NOT_DEPLOYED",
            "action": state.action,
            "termination_protection": bool(stack and stack.get("EnableTerminationProtection")),
            "last_updated": str((stack or {}).get("LastUpdatedTime") or (stack or {}).get("CreationTime") or "")[:19],
            "outputs": {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])},
        }

    with ThreadPoolExecutor(max_workers=len(ws.stacks)) as pool:
        rows = list(pool.map(row, naming.STACK_KEYS))
    stand_ins = {}
    if ws.local:
        from .deploy import local

        stand_ins = local.stand_ins(ws, [r["key"] for r in rows if r["status"] != "NOT_DEPLOYED"])
        for r in rows:
            r["stand_ins"] = [{"logical_id": logical_id, "type": kind} for logical_id, kind in stand_ins.get(r["key"], [])]
    if args.json:
        emit_json({"env": ws.env, "account_id": ws.account_id, "region": ws.region, "stacks": rows,
                   "findings": [f.as_json() for f in protections],
                   **({"stand_ins": local.stand_in_legend(stand_ins)} if ws.local else {})})
        return 0
    log(f"{'stack':<18} {'status':<32} {'protected':<9} {'last update':<19}  name")
    for r in rows:
        log(f"{r['key']:<18} {r['status']:<32} {'yes' if r['termination_protection'] else 'no':<9} {r['last_updated']:<19}  {r['name']}")
        for key, value in sorted(r["outputs"].items()):
            log(f"{'':<20}{key} = {value}")
        for item in r.get("stand_ins", []):
            log(f"{'':<20}stand-in: {item['logical_id']} [{item['type']}]")
    if stand_ins:
        log("stand-ins: the local AWS lacks these types (or, for an alarm, metric math); the project's stand-ins "
            "provide them (tooling/aws/standins):")
        for line in local.stand_in_legend(stand_ins):
            log(f"  {line}")
    if protections:
        from .deploy.gate import check

        check.print_findings(protections, log)
    return 0


# --- drift ---------------------------------------------------------------------------------

def drift_command(ws, args, log) -> int:
    from .deploy.gate import check, drift

    if args.revert:
        return revert_drift(ws, args, log)
    lock_note(ws, log)
    log(f"drift: {ws.env} in {ws.account_id}/{ws.region}: CloudFormation's drift detection of every stack")
    results = drift.detect_all(ws, ws.stacks)
    for r in results:
        log(f"  {r.key:<18} {r.status}{': ' + r.detail if r.detail else ''}")
        for res in r.resources:
            log(f"      {res['status']:<9} {res['logical_id']} [{res['type']}] {res['physical_id']}")
            for d in res["differences"]:
                log(f"          {d['path']}: expected {d['expected']}, actual {d['actual']} ({d['type']})")
    read = drift.read_back(ws)
    found = drift.findings_of(ws, read) + [f for f in drift.detection_findings(ws, results) if f.kind == "unknown"]
    log("drift: storage's protections read back from S3 and DynamoDB (what drift detection does not check):")
    check.print_findings(found, log)
    blocking = [f for f in found if f.blocking] + [f for f in drift.detection_findings(ws, results) if f.blocking]
    if args.json:
        emit_json({"env": ws.env, "ok": not blocking, "stacks": [r.as_json() for r in results],
                   "protections": [d.as_json() for d in read.differences], "findings": [f.as_json() for f in found]})
    return 3 if blocking else 0


def revert_drift(ws, args, log) -> int:
    from .deploy.execute import revert

    with exclusive(ws, args, log, keys=[naming.STORAGE]):
        result = revert.revert(ws, log)
    log(f"drift --revert: by {result.method}")
    for line in result.notes:
        log(f"  note: {line}")
    for d in result.left:
        log(f"  still different: {d.expected.type} {d.expected.name}: {d.expected.path} is {d.actual}, expected {d.expected.value}")
    if result.error:
        log(f"drift --revert: FAILED: {result.error}")
    elif result.ok:
        log("drift --revert: storage's protections equal its template (read back)")
    if args.json:
        emit_json({"env": ws.env, "ok": result.ok, "method": result.method, "done": result.done, "notes": result.notes,
                   "left": [d.as_json() for d in result.left], "error": result.error})
    return 0 if result.ok else 1


# --- destroy and adopt -----------------------------------------------------------------------

def destroy(ws, args, log) -> int:
    from .aws import cloudformation as cfn
    from .deploy.execute import apply as applying
    from .deploy.execute import destroy as destroying
    from .deploy.execute import ledger

    storage_name = ws.stacks[naming.STORAGE]["name"]
    storage = cfn.describe_stack(ws.region, storage_name)
    if args.include_storage and storage and storage.get("EnableTerminationProtection"):
        raise UserError(f"--include-storage: {storage_name} has termination protection on; turn it off yourself first "
                        f"(aws cloudformation update-termination-protection --no-enable-termination-protection --stack-name {storage_name})")
    with exclusive(ws, args, log):
        results, retained = destroying.run_destroy(ws, args.include_storage, log, poll=applying.POLL_SECONDS)
    ledger.print_ledger(retained, log)
    if args.json:
        emit_json({"env": ws.env, "results": results, "retained": retained})
    return 1 if any(r not in ("deleted", "absent") for r in results.values()) else 0


def adopt(ws, args, log) -> int:
    from .deploy.recover import adopt as adopting

    with exclusive(ws, args, log, keys=[naming.STORAGE]):
        result = adopting.run_adopt(ws, log)
    if result.detail:
        log(f"adopt: {result.detail}")
    if args.json:
        emit_json({"env": ws.env, "result": result.status, "status": result.stack_status,
                   "adopted": [{"logical_id": r.logical_id, "type": r.type, "name": r.name} for r in result.adopted],
                   "left_alone": [{"name": r.name, "why": why} for r, why in result.left_alone]})
    return {"done": 0, "nothing": 0, "refused": 3}.get(result.status, 1)


def migrate(ws, args, log) -> int:
    from .deploy.recover import migrate as migrating

    if args.delete_old:
        return delete_old(ws, args, log)
    moves, templates, tagged = migrating.survey(ws)
    steps = migrating.plan_steps(moves, templates, tagged)
    old = sorted({m.old_stack for m in moves if m.old_stack})
    if not args.dry_run:
        old = migrating.record_old_stacks(ws, old)
    log(f"migrate: {ws.env} in {ws.account_id}/{ws.region}: the storage render's stateful resources")
    log(f"  {'resource':<26} {'name':<48} {'where':<14} {'old stack':<28} DeletionPolicy")
    for m in moves:
        log(f"  {m.logical_id:<26} {m.name:<48} {m.state:<14} {(m.old_stack or '-'):<28} {m.deletion_policy or '-'}"
            + (f"  ({m.reason})" if m.reason else ""))
    log("steps:" if steps else "steps: none; every stateful resource is in the storage stack")
    for number, step in enumerate(steps, start=1):
        log(f"  {number}. {step.kind:<7} {step.stack}: {step.detail}" + (f" [{', '.join(step.resources)}]" if step.resources else ""))
    blocked = [m for m in moves if m.state == "blocked"]
    result = {"env": ws.env, **migrating.verdict_json(moves, steps), "old_stacks": old}
    if blocked:
        log(f"migrate: refused: {len(blocked)} resource(s) cannot be moved here (see above); nothing changed")
        if args.json:
            emit_json({**result, "ok": False})
        return 3
    if args.dry_run:
        log("migrate: dry run; nothing changed")
        if args.json:
            emit_json({**result, "ok": True, "dry_run": True})
        return 0
    with exclusive(ws, args, log, keys=[naming.STORAGE]):
        run = migrating.run(ws, steps, moves, templates, log, stop_after=args.stop_after)
    if run.stopped:
        return 130
    if run.error:
        log(f"migrate: stopped: {run.error}")
        log("migrate: every step so far is complete; nothing is half-done. Fix the cause and run migrate again: it resumes.")
        if args.json:
            emit_json({**result, "ok": False, "done": run.done, "error": run.error})
        return 1
    for line in migrating.hand_over(ws, old):
        log(f"migrate: {line}")
    if args.json:
        emit_json({**result, "ok": True, "done": run.done})
    return 0


def delete_old(ws, args, log) -> int:
    from .deploy.recover import migrate as migrating

    try:
        with exclusive(ws, args, log, keys=[naming.STORAGE]):
            results = migrating.delete_old_stacks(ws, args.delete_old, log)
    except migrating.Refused as exc:
        for problem in str(exc).splitlines():
            log(f"migrate: refused: {problem}")
        return 3
    if args.json:
        emit_json({"env": ws.env, "deleted": results})
    return 0 if all(r in ("deleted", "absent") for r in results.values()) else 1


def report_page(ws, args, log) -> int:
    from .deploy.gate import check
    from .deploy.report import page

    log(f"report: {ws.env} in {ws.account_id}/{ws.region}")
    found = check.run_check(ws, list(ws.stacks)).findings
    path = page.write(ws, args.out or ws.out_dir / "report.html", found)
    log(f"report: written to {path} (one self-contained file: open it in a browser)")
    if args.json:
        emit_json({"env": ws.env, "report": str(path)})
    return 0


def rename(ws, args, log) -> int:
    from contextlib import nullcontext

    from .deploy.recover import rename as renaming

    requested = renaming.parse(args.pairs)
    # the lock before the survey: the steps are decided from what is deployed under it
    with nullcontext() if args.dry_run else exclusive(ws, args, log, keys=[naming.STORAGE]):
        return _rename(ws, args, log, renaming, requested)


def _rename(ws, args, log, renaming, requested) -> int:
    result = {"env": ws.env, "dry_run": bool(args.dry_run)}
    try:
        facts = renaming.survey(ws, requested)
    except renaming.Refused as exc:
        log(f"rename: refused: {exc}")
        if args.json:
            emit_json({**result, "ok": False, "refused": [str(exc)], "targets": [], "steps": []})
        return 3
    targets = renaming.assess(facts, requested)
    refused = [f"{t.argument}: {t.reason}" for t in targets if t.state == "refused"]
    refused += renaming.export_problems(facts, targets, ws.env, ws.local) if not refused else []
    steps = renaming.plan_steps(facts, targets) if not refused else []
    result.update({"targets": [t.as_json() for t in targets], "steps": [s.as_json() for s in steps], "refused": refused})
    log(f"rename: {ws.env} in {ws.account_id}/{ws.region}, stack {facts.stack_name}")
    log(f"  {'OLD=NEW':<40} {'type':<22} {'state':<10} physical")
    for t in targets:
        log(f"  {t.argument:<40} {t.type:<22} {t.state:<10} {t.physical_id or t.identity or '-'}")
    if refused:
        for reason in refused:
            log(f"rename: refused: {reason}")
        log("rename: nothing changed")
        if args.json:
            emit_json({**result, "ok": False})
        return 3
    log("steps:" if steps else "steps: none; every resource is under its new logical id (protection is checked)")
    for number, step in enumerate(steps, start=1):
        log(f"  {number}. {step.kind:<7} {step.detail}" + (f" [{', '.join(step.resources)}]" if step.resources else ""))
    if args.dry_run:
        log("rename: dry run; nothing changed")
        if args.json:
            emit_json({**result, "ok": True})
        return 0
    run = renaming.run(ws, steps, targets, log, stop_after=args.stop_after)
    result["done"] = run.done
    if run.stopped:
        if args.json:
            emit_json({**result, "ok": False, "stopped": True})
        return 130
    if run.error:
        log(f"rename: stopped: {run.error}")
        log("rename: every step so far is complete; fix the cause and run the same command again: it resumes")
        if args.json:
            emit_json({**result, "ok": False, "error": run.error})
        return 1
    log(f"rename: done; next, bring the stack to the full render (outputs, what was attached): {command_line(ws, 'apply')}")
    if args.json:
        emit_json({**result, "ok": True})
    return 0


HANDLERS = {"plan": plan, "apply": apply, "status": status, "destroy": destroy, "check": check_command, "adopt": adopt,
            "migrate": migrate, "drift": drift_command, "report": report_page, "rename": rename}


def run_handler(ws, args, log) -> int:
    """The command; those that change stacks with the interrupt handling of deploy/interrupt.py."""
    from .deploy import interrupt

    if args.command not in MUTATING and not getattr(args, "revert", False):
        return HANDLERS[args.command](ws, args, log)
    with interrupt.handled():
        try:
            code = HANDLERS[args.command](ws, args, log)
        except interrupt.Stopped as exc:
            log(f"deploy: {exc}")
            code = 1
        if interrupt.stopped():
            report_interrupted(ws, log)
            code = interrupt.exit_code()
    return code


def main(argv=None) -> int:
    from .deploy import interrupt

    code = _main(argv)
    if interrupt.stopped():
        interrupt.leave(code)  # threads still in a call must not hold up (or trace back in) the exit
    return code


def _main(argv=None) -> int:
    args = parse_args(argv)
    out = sys.stderr if args.json or getattr(args, "markdown", False) else sys.stdout

    def log(text: str) -> None:
        print(text, file=out, flush=True)

    try:
        environment.load(args.env)  # bad input is refused before anything starts or changes
        if args.region:
            naming.check_region(args.region)
        for key in getattr(args, "only", None) or []:
            if key not in naming.STACK_KEYS:
                raise UserError(f"stack key {key!r}: unknown (known: {', '.join(naming.STACK_KEYS)})")
        if args.keep and not args.local:
            raise UserError("--keep: only with --local (it keeps the local AWS running)")
        if getattr(args, "markdown", False) and args.json:
            raise UserError("--markdown and --json: choose one (both print on stdout)")
        if getattr(args, "plan", None) and args.only:
            raise UserError("--plan and --only: a plan is applied whole (make a plan of what you want to deploy)")
        with target(args, log):
            from .deploy.workspace import open_workspace

            ws = open_workspace(args.env, args.local, args.region, log=log)
            return run_handler(ws, args, log)
    except UserError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return exc.status
    except BrokenPipeError:  # e.g. `deploy.py check --json | head`: the reader left, nothing to report
        try:  # so that the interpreter's last flush at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is no file (captured)
            pass
        return 1
    except KeyboardInterrupt:
        print("deploy: interrupted; stacks already in progress go on in CloudFormation (see: deploy.py status)", file=sys.stderr)
        return 130
    except Exception as exc:  # an AWS refusal or outage: one line, not a traceback
        from .aws.session import BotoCoreError, ClientError, describe_error

        if isinstance(exc, (ClientError, BotoCoreError)):
            print(f"deploy: {describe_error(exc)}", file=sys.stderr)
            return 1
        raise
