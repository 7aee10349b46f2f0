"""Deadlines, stop requests and the repository cap, with collectors that stand
still on purpose (an Event nobody sets, each wait bounded) instead of servers."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audits.collectors.base import CollectOptions
from audits.config import ConfigError, parse_config
from audits.model import REPOSITORIES, TLS, Fact, FactState, TargetFacts, utcnow
from audits.scheduler import STUCK_FACT, StopRequest, collect_all
from audits.targets import DistributionTarget

STUCK_FOR_S = 10.0  # how long a stuck collector stays stuck at most (the test is over long before)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of each test, so no stuck collector outlives it by more than a moment."""
    event = threading.Event()
    yield event
    event.set()


def target(name: str, deadline: float = 60.0, kind: str = "distribution") -> Any:
    if kind != "distribution":
        return type("Target", (), {"name": name, "kind": kind, "deadline": deadline})()
    return DistributionTarget(name=name, kind="distribution", url="http://127.0.0.1:1", deadline=deadline)


def finished(t: Any) -> TargetFacts:
    return TargetFacts(t.name, t.kind, {TLS: Fact.ok("TLSv1.3", "probe")}, utcnow(), utcnow())


def stuck_after_tls(release: threading.Event) -> Any:
    """A collector that publishes TLS, then never gets to the repository listing."""

    def collect(t: Any, options: CollectOptions) -> TargetFacts:
        options.record(TLS, Fact.ok("TLSv1.3", "TLS handshake"))
        release.wait(STUCK_FOR_S)
        return finished(t)

    return collect


def run(targets: list[Any], collect: Any, **kwargs: Any) -> tuple[list[TargetFacts], float]:
    started = time.monotonic()
    facts = collect_all(targets, [CollectOptions() for _ in targets], collect, **kwargs)
    return facts, time.monotonic() - started


def test_a_stuck_target_keeps_what_it_published_and_errors_the_rest(release: threading.Event) -> None:
    (facts,), took = run([target("slow", deadline=0.3)], stuck_after_tls(release), workers=1)
    assert took < 1.5
    assert facts.facts[TLS].state is FactState.OK, "the handshake it saw is kept"
    missing = facts.facts[REPOSITORIES]
    assert missing.state is FactState.ERROR
    assert missing.detail == "target did not finish within 0.3 s (its deadline)"


def test_a_stuck_target_does_not_hold_back_the_next_one(release: threading.Event) -> None:
    slow, fast = target("slow", deadline=0.3), target("fast")

    def collect(t: Any, options: CollectOptions) -> TargetFacts:
        if t.name == "slow":
            release.wait(STUCK_FOR_S)
        return finished(t)

    facts, took = run([slow, fast], collect, workers=1)  # one slot: fast waits for slow's deadline only
    assert took < 1.5
    assert facts[0].facts[REPOSITORIES].state is FactState.ERROR
    assert set(facts[1].facts) == {TLS}, "the fast target's own facts, nothing filled in"
    assert facts[1].facts[TLS].source == "probe"


def test_audit_deadline_covers_running_and_unstarted_targets(release: threading.Event) -> None:
    targets = [target("a"), target("b")]
    facts, took = run(targets, stuck_after_tls(release), workers=1, audit_deadline=0.3)
    assert took < 1.5
    reason = "target did not finish within the audit deadline of 0.3 s (--deadline)"
    assert facts[0].facts[TLS].state is FactState.OK
    assert facts[0].facts[REPOSITORIES].detail == reason
    assert facts[1].facts[TLS].detail == reason, "never started: every fact is the deadline's error"


def test_a_stop_request_ends_collection_with_its_reason(release: threading.Event) -> None:
    stop = StopRequest()
    threading.Timer(0.2, stop.request, args=("audit interrupted by SIGTERM",)).start()
    (facts,), took = run([target("slow")], stuck_after_tls(release), workers=1, stop=stop)
    assert took < 1.0
    assert facts.facts[REPOSITORIES].detail == "audit interrupted by SIGTERM"
    assert facts.facts[TLS].state is FactState.OK


def test_a_kind_that_declares_no_facts_errors_as_a_whole(release: threading.Event) -> None:
    (facts,), _ = run([target("files", deadline=0.2, kind="no-such-kind")], stuck_after_tls(release), workers=1)
    assert facts.facts[STUCK_FACT].detail == "target did not finish within 0.2 s (its deadline)"


def test_facts_published_after_the_deadline_are_ignored(release: threading.Event) -> None:
    options = CollectOptions()
    gave_up = threading.Event()

    def collect(t: Any, opts: CollectOptions) -> TargetFacts:
        release.wait(STUCK_FOR_S)
        opts.record(REPOSITORIES, Fact.ok((), "late"))
        gave_up.set()
        return finished(t)

    (facts,) = collect_all([target("slow", deadline=0.2)], [options], collect, workers=1)
    release.set()
    assert gave_up.wait(2)
    assert facts.facts[REPOSITORIES].state is FactState.ERROR
    assert REPOSITORIES not in options.published.facts()


def test_repository_cap_keeps_the_first_by_name_and_says_n_of_m() -> None:
    options = CollectOptions(max_repositories=3)
    kept = options.cap_repositories(["d", "b", "e", "a", "c"])
    assert kept == ["a", "b", "c"]
    (gap,) = options.published.gaps()
    assert gap == "repositories: audited 3 of 5 (max_repositories 3); the other 2 were not audited"
    within = CollectOptions(max_repositories=5)
    assert within.cap_repositories(["b", "a"]) == ["b", "a"], "order untouched under the cap"
    assert within.published.gaps() == () and within.published.warnings() == ()


def test_a_large_target_is_warned_about() -> None:
    options = CollectOptions()
    options.cap_repositories([f"r{i:05d}" for i in range(2_500)])
    (warning,) = options.published.warnings()
    assert warning.startswith("large target: 2,500 repositories selected")
    assert options.published.gaps() == ()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("deadline", 0, "targets[0].deadline"), ("max_repositories", 0, "targets[0].max_repositories")],
)
def test_deadline_and_cap_are_validated(key: str, value: object, expected: str) -> None:
    raw = {"targets": [{"name": "t", "kind": "docker-config", key: value}]}
    with pytest.raises(ConfigError, match=re.escape(expected)):
        parse_config(raw, Path("regguard.yaml"))


def test_every_target_kind_has_a_deadline_and_a_cap() -> None:
    raw = {
        "targets": [
            {"name": "d", "kind": "distribution", "url": "https://r:5000", "deadline": 30, "max_repositories": 50},
            {"name": "e", "kind": "ecr", "region": "us-east-1", "deadline": 60},
            {"name": "c", "kind": "docker-config"},
        ]
    }
    d, e, c = parse_config(raw, Path("regguard.yaml")).targets
    assert (d.deadline, d.max_repositories, d.timeout) == (30, 50, 10.0)
    assert (e.deadline, e.max_repositories) == (60, 10_000)
    assert (c.deadline, c.max_repositories) == (600, 10_000)


@pytest.mark.parametrize(("option", "value"), [("--deadline", "0"), ("--deadline", "-5"), ("--max-repositories", "0")])
def test_bad_deadline_or_cap_on_the_command_line_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    from audits.cli import main

    config = tmp_path / "regguard.yaml"
    config.write_text("targets: [{name: c, kind: docker-config}]\n")
    assert main(["audit", "-c", str(config), option, value]) == 2
    assert option in capsys.readouterr().err
