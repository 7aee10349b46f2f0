"""`regguard` command line (the contract in DESIGN.md).

Imports of anything heavy (SDKs, Jinja2, rich) happen inside the command
functions so `regguard --help` stays fast. Usage and config errors print one
line to stderr and exit 2; they never show a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from audits import __version__

if TYPE_CHECKING:
    from audits.config import AuditConfig
    from audits.engine import AuditRun
    from audits.model import Severity
    from audits.scheduler import StopRequest
    from audits.store.db import Shard
    from sandbox.estate import Estate

EXIT_OK, EXIT_USAGE = 0, 2  # 1 (failing) and 3 (incomplete) come from engine.exit_code
EXIT_INCOMPLETE = 3  # also: collection cut short by SIGTERM / SIGINT, reports written
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # stopped by a signal outside an audit, or by a second one: no reports
ALL_FORMATS = ("html", "md", "json", "sarif", "junit", "oscal")
DEFAULT_FORMATS = "html,md,json,sarif,junit"
MAX_SHARDS = 10_000
ERROR_LINE_LIMIT = 1000  # characters: a config path, key and reason fit; a pasted blob does not
DEFAULT_SANDBOX_DIR = Path(".regguard/sandbox")
# The demo declares use cases so RG-FIT-001 shows the decision matrix at work.
DEMO_USE_CASES = ("enterprise-internal", "vulnerability-scanning")


class UsageError(Exception):
    """Bad command-line input: one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regguard",
        description="Audit container registries against one rule catalog; provision them with Pulumi.",
    )
    parser.add_argument("--version", action="version", version=f"regguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="start the local estate, audit it, write every report")
    demo.add_argument("--output", type=Path, default=Path("regguard-report"))
    demo.add_argument("--workdir", type=Path, default=None, help="where the estate keeps its files")

    sandbox = sub.add_parser("sandbox", help="the local estate of real registries alone")
    sandbox.add_argument("action", choices=("up", "down", "status"))
    sandbox.add_argument("--workdir", type=Path, default=DEFAULT_SANDBOX_DIR)

    audit = sub.add_parser("audit", help="audit the targets of a regguard.yaml")
    audit.add_argument("-c", "--config", type=Path, required=True)
    audit.add_argument("--env", dest="environment", default=None, help="override the environment")
    audit.add_argument(
        "--format",
        dest="formats",
        default=DEFAULT_FORMATS,
        help=f"comma list of {','.join(ALL_FORMATS)}",
    )
    audit.add_argument("--output", type=Path, default=Path("regguard-report"))
    audit.add_argument("--fail-on", default="high", help="lowest severity that fails the run (default high)")
    audit.add_argument("--evidence", action="store_true", help="also write the evidence bundle (zip)")
    audit.add_argument("--concurrency", type=int, default=16, help="requests in flight per target")
    audit.add_argument(
        "--deadline",
        type=float,
        default=None,
        metavar="S",
        help="seconds the whole collection may take; unfinished targets are reported as errors (exit 3)",
    )
    audit.add_argument("--history", metavar="URL", default=None,
                       help="history database (SQLite path or postgresql://...; default REGGUARD_HISTORY_URL, "
                       "`history:` in the config, else ~/.local/share/regguard/history.sqlite)")
    audit.add_argument("--shard", default=None, metavar="I/N",
                       help="audit only part I (0 to N-1, as Kubernetes' JOB_COMPLETION_INDEX) of N of the "
                       "(target, account, region) scopes; with --run-id. The shard that completes the run "
                       "renders the merged run; `report --run ID` renders it later")
    audit.add_argument("--run-id", default=None, metavar="ID", help="the run a --shard belongs to")
    audit.add_argument("--merged-output", type=Path, default=None, metavar="DIR",
                       help="where the shard that completes the run writes the merged run (default OUTPUT/merged)")
    audit.add_argument(
        "--max-repositories",
        type=int,
        default=None,
        metavar="N",
        help="audit at most N repositories per target (overrides max_repositories; default 10000)",
    )

    _add_history_commands(sub)

    rules = sub.add_parser("rules", help="print the rule catalog")
    rules.add_argument("--format", dest="fmt", choices=("md", "json"), default="md")

    recommend = sub.add_parser("recommend", help="the registry decision matrix")
    recommend.add_argument(
        "--use-case",
        dest="use_cases",
        action="append",
        required=True,
        help="a use case (repeat or comma-separate); `--use-case list` shows them",
    )

    lint = sub.add_parser("lint-refs", help="image references: latest, unpinned, insecure, non-official")
    lint.add_argument("paths", nargs="+", type=Path)
    lint.add_argument("--env", dest="environment", default="prod")
    lint.add_argument("--format", dest="fmt", choices=("text", "json", "sarif"), default="text")
    lint.add_argument("--allow-registry", action="append", default=[])
    lint.add_argument("--allow-namespace", action="append", default=[])
    lint.add_argument("--fail-on", default="medium")
    return parser


def _add_history_commands(sub: Any) -> None:
    from audits.history_cli import add_history_option

    history = sub.add_parser("history", help="stored runs; `history verify` checks the hash chain")
    history.add_argument("action", nargs="?", choices=("list", "verify"), default="list")
    history.add_argument("--target", default=None, help="only runs that audited this target")
    history.add_argument("--since", default=None, metavar="DATE", help="only runs started at or after DATE")
    add_history_option(history)

    diff = sub.add_parser("diff", help="new, fixed and persisting failures between two runs (default: the last two)")
    diff.add_argument("run_a", nargs="?", default=None)
    diff.add_argument("run_b", nargs="?", default=None)
    diff.add_argument("--format", dest="fmt", choices=("text", "json"), default="text")
    add_history_option(diff)

    verify = sub.add_parser("verify-evidence", help="recompute and check an evidence bundle")
    verify.add_argument("bundle", type=Path)
    add_history_option(verify)

    report = sub.add_parser("report", help="render a stored (e.g. sharded) run")
    report.add_argument("--run", required=True, metavar="ID")
    report.add_argument("--format", dest="formats", default=DEFAULT_FORMATS)
    report.add_argument("--output", type=Path, default=Path("regguard-report"))
    add_history_option(report)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _exit_cleanly_on_sigterm()
    handlers = {
        "demo": cmd_demo,
        "sandbox": cmd_sandbox,
        "audit": cmd_audit,
        "rules": cmd_rules,
        "recommend": cmd_recommend,
        "lint-refs": cmd_lint_refs,
        **_history_handlers(),
    }
    from audits.config import ConfigError
    from audits.history import HistoryError
    from audits.safe_files import UnsafeLocation
    from audits.untrusted import terminal_text

    try:
        code: int = handlers[args.command](args)
        return code
    except (ConfigError, UsageError, UnsafeLocation, HistoryError) as exc:
        print(f"regguard: {terminal_text(exc, limit=ERROR_LINE_LIMIT)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("regguard: interrupted", file=sys.stderr)
        return EXIT_SIGINT


def _history_handlers() -> dict[str, Any]:
    from audits.evidence_check import cmd_verify_evidence
    from audits.history_cli import cmd_diff, cmd_history, cmd_report

    return {"history": cmd_history, "diff": cmd_diff, "verify-evidence": cmd_verify_evidence, "report": cmd_report}


def run() -> NoReturn:
    """The `regguard` program: `main()`, then exit. When the audit gave up on a
    collector thread that is still stuck in a read, exit at once (`os._exit`,
    after flushing): the interpreter's own exit would join concurrent.futures
    workers and hang on it, after the reports were already written."""
    try:
        code = main()
    except KeyboardInterrupt:  # Ctrl-C before main() is ready to catch it (still importing)
        code = EXIT_SIGINT
    scheduler = sys.modules.get("audits.scheduler")
    if scheduler is not None and scheduler.abandoned_collectors_running():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop sandbox processes."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(EXIT_SIGTERM)

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def _signals_end_collection(stop: StopRequest) -> Iterator[None]:
    """While an audit runs, the first SIGTERM or SIGINT asks it to stop (the
    reports of what was collected are still written); a second one stops the
    process at once, as outside an audit. Only the main thread can set handlers;
    elsewhere signals keep their usual effect."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.reason is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(EXIT_SIGTERM)
        stop.request(f"audit interrupted by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------
# audit
# --------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace) -> int:
    from audits.config import load_config
    from audits.engine import exit_code

    formats = _parse_formats(args.formats)
    fail_on = _parse_severity(args.fail_on)
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.deadline is not None and not args.deadline > 0:
        raise UsageError("--deadline must be a number of seconds above 0")
    if args.max_repositories is not None and args.max_repositories < 1:
        raise UsageError("--max-repositories must be at least 1")
    shard = _parse_shard(args.shard, args.run_id)
    config = load_config(args.config)
    run = audit_and_report(
        config,
        config_dir=args.config.resolve().parent,
        environment=args.environment,
        formats=formats,
        output=args.output,
        evidence=args.evidence,
        concurrency=args.concurrency,
        deadline=args.deadline,
        max_repositories=args.max_repositories,
        history=args.history,
        shard=shard,
        merged_output=args.merged_output,
    )
    return EXIT_INCOMPLETE if run.interrupted else exit_code(run.result, fail_on)


def audit_and_report(
    config: AuditConfig,
    *,
    config_dir: Path,
    environment: str | None,
    formats: Sequence[str],
    output: Path,
    evidence: bool,
    concurrency: int = 16,
    deadline: float | None = None,
    max_repositories: int | None = None,
    history: str | None = None,
    shard: Shard | None = None,
    merged_output: Path | None = None,
) -> AuditRun:
    """Check the output location and the history store, run the audit with
    progress, store the run, write reports, print the summary. A signal
    during the run ends the collection early; the reports still follow.
    A shard stores its part; the one that completes the run also renders
    the merged run into `merged_output`."""
    from audits.engine import run_audit
    from audits.history_cli import open_for_config, prepare_history, render_if_complete, store_run
    from audits.progress import terminal_progress
    from audits.scheduler import StopRequest

    _check_output(output)
    merged = (merged_output or output / "merged") if shard is not None else None
    if merged is not None:
        _check_output(merged)
    db = open_for_config(history, config, config_dir)
    try:
        baseline = prepare_history(db, config, config_dir)
        stop = StopRequest()
        with _signals_end_collection(stop):
            with terminal_progress() as progress:
                run = run_audit(
                    config,
                    environment=environment,
                    concurrency=concurrency,
                    progress=progress,
                    pull_history=baseline,
                    deadline=deadline,
                    max_repositories=max_repositories,
                    stop=stop,
                    shard=(shard.index, shard.count) if shard else None,
                )
            if run.interrupted:
                print(f"regguard: {run.interrupted}; writing the reports of what was collected", file=sys.stderr)
            run = store_run(db, run, shard)
            _write_outputs(run, formats, output, evidence, config)
            if shard is not None and merged is not None:
                render_if_complete(db, shard, formats, merged)
        if stop.reason is not None and run.interrupted is None:
            # The signal came after the collection (while storing or writing):
            # the reports are whole, but the exit status still says it came.
            run = dataclasses.replace(run, interrupted=stop.reason)
    finally:
        db.close()
    return run


def _write_outputs(
    run: AuditRun, formats: Sequence[str], output: Path, evidence: bool, config: AuditConfig | None = None
) -> None:
    from audits.rules.registry import catalog
    from audits.summary import print_summary
    from reports import write_evidence_bundle, write_reports

    output.mkdir(parents=True, exist_ok=True)
    rules = catalog()
    paths = write_reports(run.result, rules, formats, output)
    if evidence:
        reports = {p.name: p.read_bytes() for p in paths}  # the files just written, as the auditor gets them
        config_data = config.model_dump(mode="json") if config else None
        paths.append(write_evidence_bundle(run.result, rules, output, _facts_for_bundle(run), reports, config_data))
    print_summary(run.result, paths)


def _check_output(output: Path) -> None:
    """Refuse a bad `--output` (a file, under a file, /proc, a link, a folder
    others can rewrite) before anything is audited: exit 2, one line."""
    from audits.safe_files import UnsafeLocation, prepare_output_dir

    try:
        prepare_output_dir(output)
    except UnsafeLocation as exc:
        raise UsageError(f"--output {exc}") from None


def _facts_for_bundle(run: AuditRun) -> dict[str, dict[str, Any]]:
    """Facts as plain data for the evidence bundle (dataclasses -> dicts)."""
    from audits.serialize import facts_to_data

    return {name: facts_to_data(tf) for name, tf in run.facts.items()}


def _parse_shard(text: str | None, run_id: str | None) -> Shard | None:
    """`--shard I/N` with `--run-id ID`: both or neither."""
    if text is None and run_id is None:
        return None
    from audits.store.db import Shard

    if text is None or not run_id:
        raise UsageError("--shard I/N and --run-id ID go together")
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count) <= MAX_SHARDS):
        raise UsageError(f"--shard: expected I/N with 0 <= I < N <= {MAX_SHARDS} (I counts from 0), not {text!r}")
    if len(run_id) > 48 or not run_id.replace("-", "").replace("_", "").isalnum():
        raise UsageError("--run-id: letters, digits, - and _ only, at most 48 characters")
    return Shard(run_id, int(index), int(count))


def _parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    aliases = {"markdown": "md", "xml": "junit"}
    formats = [aliases.get(f, f) for f in formats]
    unknown = [f for f in formats if f not in ALL_FORMATS]
    if unknown or not formats:
        bad = unknown[0] if unknown else "(none)"
        raise UsageError(f"--format: unknown format {bad!r}; expected a comma list of {','.join(ALL_FORMATS)}")
    return list(dict.fromkeys(formats))


def _parse_severity(text: str) -> Severity:
    from audits.model import Severity

    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None


# --------------------------------------------------------------------------
# rules, recommend
# --------------------------------------------------------------------------


def cmd_rules(args: argparse.Namespace) -> int:
    from audits.catalog_doc import catalog_json, catalog_markdown

    print(catalog_json() if args.fmt == "json" else catalog_markdown())
    return EXIT_OK


def cmd_recommend(args: argparse.Namespace) -> int:
    from audits.matrix import USE_CASES, recommend

    use_cases = [u.strip() for arg in args.use_cases for u in arg.split(",") if u.strip()]
    if use_cases == ["list"]:
        for key, case in sorted(USE_CASES.items()):
            print(f"{key:28} {case.description}")
        return EXIT_OK
    try:
        ranking = recommend(use_cases)
    except ValueError as exc:
        raise UsageError(f"--use-case: {exc}") from None
    from audits.summary import print_recommendations

    print_recommendations(use_cases, ranking)
    return EXIT_OK


# --------------------------------------------------------------------------
# lint-refs
# --------------------------------------------------------------------------


def cmd_lint_refs(args: argparse.Namespace) -> int:
    from audits.config import parse_config
    from audits.engine import exit_code, run_audit
    from audits.rules.registry import catalog
    from audits.summary import print_lint_findings

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"lint-refs: no such file or directory: {missing[0]}")
    raw = {
        "environment": args.environment,
        "allowed_registries": args.allow_registry,
        "allowed_namespaces": args.allow_namespace,
        "targets": [{"name": "refs", "kind": "image-refs", "paths": [str(p.resolve()) for p in args.paths]}],
    }
    config = parse_config(raw, Path("(command line)"))
    run = run_audit(config)
    if args.fmt == "json":
        from reports import get_reporter

        print(get_reporter("json").render(run.result, catalog()))
    elif args.fmt == "sarif":
        from reports import get_reporter

        print(get_reporter("sarif").render(run.result, catalog()))
    else:
        print_lint_findings(run.result)
    return exit_code(run.result, _parse_severity(args.fail_on))


# --------------------------------------------------------------------------
# sandbox and demo
# --------------------------------------------------------------------------


def cmd_sandbox(args: argparse.Namespace) -> int:
    from sandbox.state import sandbox_down, sandbox_status, sandbox_up

    workdir: Path = args.workdir
    if args.action == "up":
        estate = sandbox_up(workdir, extra_services=_extra_services())
        config_path = workdir / "regguard.yaml"
        _write_yaml(config_path, estate.audit_config(use_cases=DEMO_USE_CASES))
        print(f"sandbox is up; audit config: {config_path}")
        print(f"secrets for it: `set -a; . {workdir / 'secrets.env'}; set +a`")
        print(config_path.read_text(encoding="utf-8"))
        return EXIT_OK
    if args.action == "down":
        stopped = sandbox_down(workdir)
        print(f"sandbox is down ({len(stopped)} process(es) stopped)")
        return EXIT_OK
    status = sandbox_status(workdir)
    import json

    print(json.dumps(status, indent=2, default=str))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the estate, audit it, write every report, stop the estate —
    also on Ctrl-C or error. Exit 0 when it ran to the end."""
    import tempfile

    from sandbox.estate import start_estate
    from sandbox.process import spawned_processes

    output: Path = args.output
    _check_output(output)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="regguard-demo-"))
    print(f"starting the local estate in {workdir} ...", file=sys.stderr)
    # Whatever interrupts the demo (a signal between a server's start and its
    # estate taking it over included), no server it spawned outlives it.
    with spawned_processes() as spawned:
        try:
            estate = start_estate(workdir, extra_services=_extra_services())
            run = _audit_estate(estate, output)
        finally:
            spawned.stop_all()
    print("demo finished; the estate is stopped.", file=sys.stderr)
    return EXIT_INCOMPLETE if run.interrupted else EXIT_OK


def _audit_estate(estate: Estate, output: Path) -> AuditRun:
    """Audit the running estate with every report format; stop it afterwards."""
    from audits.config import parse_config

    try:
        os.environ.update(estate.env)
        raw = estate.audit_config(use_cases=DEMO_USE_CASES)
        # The demo keeps its history beside its reports, so a second `make demo`
        # shows what changed since the first and a trend (--history/env still win).
        raw.setdefault("history", ".regguard/history.sqlite")
        config_path = output / "regguard.yaml"
        _write_yaml(config_path, raw)
        config = parse_config(raw, config_path)
        return audit_and_report(
            config,
            config_dir=output,
            environment=None,
            formats=list(ALL_FORMATS),
            output=output,
            evidence=True,
        )
    finally:
        estate.stop()
        for key in estate.env:
            os.environ.pop(key, None)


def _extra_services() -> list[Any]:
    """Services the estate starts beside the Distribution registries: each kind's
    `sandbox` service from the kind table (e.g. moto with an ECR estate)."""
    from audits import kinds

    def service(qualified: str) -> Any:
        return lambda workdir, detach: kinds.load(qualified)(workdir, detach=detach)

    return [service(k.sandbox) for k in kinds.all_kinds() if k.sandbox]


def _write_yaml(path: Path, data: Any) -> None:
    import yaml

    from audits.safe_files import write_replacing

    write_replacing(path.parent, path.name, yaml.safe_dump(data, sort_keys=False).encode("utf-8"))


if __name__ == "__main__":  # pragma: no cover
    run()
