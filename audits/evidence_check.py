"""`regguard verify-evidence BUNDLE`: recompute an evidence bundle's manifest
and, given a history store, check its run against the hash chain.

The bundle is untrusted input (it travels through auditors' mailboxes): its
entries are read with caps on their number and sizes, names that could
escape a folder are refused, and every check failure is named, never raised.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_ENTRIES = 20_000  # a 10,000-repository audit files about 400 control and fact entries
MAX_ENTRY_BYTES = 512 * 1024 * 1024
MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024
MANIFEST = "MANIFEST.json"


@dataclass
class BundleCheck:
    files: int = 0
    run: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def verify_bundle(path: Path) -> BundleCheck:
    check = BundleCheck()
    try:
        with zipfile.ZipFile(path) as archive:
            contents = _read_entries(archive, check)
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        check.problems.append(f"{path}: not a readable zip ({exc})")
        return check
    if contents is None:
        return check
    _check_manifest(contents, check)
    if "run.json" in contents:
        try:
            check.run = json.loads(contents["run.json"])
        except ValueError:
            check.problems.append("run.json: not JSON")
    return check


def _read_entries(archive: zipfile.ZipFile, check: BundleCheck) -> dict[str, bytes] | None:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        check.problems.append(f"more than {MAX_ENTRIES} entries; not a regguard bundle")
        return None
    if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES or any(i.file_size > MAX_ENTRY_BYTES for i in infos):
        check.problems.append("entries larger than a regguard bundle holds")
        return None
    contents: dict[str, bytes] = {}
    for info in infos:
        if info.filename.startswith("/") or ".." in info.filename.split("/") or info.filename in contents:
            check.problems.append(f"{info.filename!r}: an entry name a regguard bundle never has")
            continue
        with archive.open(info) as stream:  # CRC-checked; a flipped byte raises BadZipFile
            contents[info.filename] = stream.read(MAX_ENTRY_BYTES + 1)
    return contents


def _check_manifest(contents: dict[str, bytes], check: BundleCheck) -> None:
    try:
        listed = {e["path"]: e for e in json.loads(contents[MANIFEST])["files"]}
    except (KeyError, ValueError, TypeError):
        check.problems.append(f"{MANIFEST}: missing or not a regguard manifest")
        return
    for name, data in sorted(contents.items()):
        if name == MANIFEST:
            continue
        entry = listed.pop(name, None)
        if entry is None:
            check.problems.append(f"{name}: not listed in the manifest (added after the audit)")
        elif hashlib.sha256(data).hexdigest() != entry.get("sha256") or len(data) != entry.get("bytes"):
            check.problems.append(f"{name}: content differs from the manifest (changed after the audit)")
        else:
            check.files += 1
    for name in sorted(listed):
        check.problems.append(f"{name}: listed in the manifest but missing (removed after the audit)")


def check_against_history(check: BundleCheck, args: argparse.Namespace) -> None:
    """The bundle's run must be in the store with the same hash, and the
    chain up to the store's head must be intact."""
    from audits.history_cli import open_for_args
    from audits.store import HistoryError, verify_chain

    run_id, digest = check.run.get("run_id"), check.run.get("run_sha256")
    if not run_id or not digest:
        check.problems.append("run.json: no run id or run hash; the run was not stored in a history")
        return
    db = open_for_args(args)
    try:
        stored = db.run(str(run_id))
        if stored.run_id != run_id or stored.content_sha256 != digest:
            check.problems.append(f"run {run_id}: its hash differs from the stored run's (altered bundle or store)")
        chain = verify_chain(db)
        check.problems.extend(f"history: {p}" for p in chain.problems)
    except HistoryError as exc:
        check.problems.append(str(exc))
    finally:
        db.close()


def cmd_verify_evidence(args: argparse.Namespace) -> int:
    """Exit 0 when every check passes, 1 when any fails (each one named)."""
    import sys

    from audits.untrusted import terminal_text

    check = verify_bundle(args.bundle)
    against_history = bool(args.history or args.config)
    if check.valid and against_history:
        check_against_history(check, args)
    for problem in check.problems:
        print(f"regguard: {terminal_text(problem)}", file=sys.stderr)
    if not check.valid:
        print(f"{args.bundle}: REJECTED ({len(check.problems)} problem(s))")
        return 1
    where = " and matches the history chain" if against_history else ""
    print(f"{args.bundle}: OK, {check.files} file(s) match the manifest{where}; "
          f"run {terminal_text(check.run.get('run_id'))} sha256 {terminal_text(check.run.get('run_sha256'))}")
    return 0
