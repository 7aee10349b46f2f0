"""The pack as the Pulumi CLI runs it: importing the policy modules starts
nothing, while `python policy/` (what the CLI executes) serves the analyzer
over gRPC, lists our policies and reports violations through the real
AnalyzeStack path (props deserialized and proxied by pulumi_policy)."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policy.policies import build_policies
from tests.policy.conftest import ROOT, replace_resources, with_inputs
from tests.pulumi.mocks import RegisteredResource

START_TIMEOUT_S = 60.0
MANDATORY = analyzer_pb2.EnforcementLevel.Value("MANDATORY")


def test_importing_the_policy_modules_does_not_start_a_server() -> None:
    """A PolicyPack at import time would print a port and block forever."""
    done = subprocess.run(
        [sys.executable, "-c", "import policy.policies, policy.declared, policy.declared_ecr, policy.__main__; "
         "print('imported')"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"


def test_the_policy_pack_imports_no_aws_sdk() -> None:
    """The pack runs in every `pulumi preview`: it normalizes declared state with
    `audits.collectors.ecr_facts`, never the collector, so boto3/botocore (a second
    or more of start-up) stay out of its process."""
    probe = (
        "import sys, policy.declared, policy.declared_ecr, policy.policies, policy.__main__; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=START_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.fixture
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """`python .` inside policy/ (as the CLI runs a Python pack); the first
    stdout line is the port of the analyzer it serves on 127.0.0.1."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "."],
        cwd=ROOT / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        port = _read_port(proc)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_S)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def _read_port(proc: subprocess.Popen[bytes]) -> int:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=START_TIMEOUT_S):
            raise AssertionError("policy pack printed no port")
    line = proc.stdout.readline().decode().strip()
    if not line.isdigit():
        err = proc.stderr.read().decode() if proc.poll() is not None and proc.stderr else ""
        raise AssertionError(f"policy pack did not start: {line!r} {err[-2000:]}")
    return int(line)


def _analyzer_resource(r: RegisteredResource) -> analyzer_pb2.AnalyzerResource:
    props = struct_pb2.Struct()
    props.update(json.loads(json.dumps(r.inputs)))
    return analyzer_pb2.AnalyzerResource(type=r.type, properties=props, urn=r.urn, name=r.name, parent=r.parent_urn)


def test_pack_serves_our_policies_and_reports_through_grpc(
    analyzer: analyzer_pb2_grpc.AnalyzerStub, stack_runs: Any
) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "regguard"
    assert {p.name for p in info.policies} == {p.name for p in build_policies()}

    run = stack_runs("prod")
    (repo,) = [r for r in run.of_type("aws:ecr/repository:Repository") if r.inputs["name"] == "payments/api"]
    edits: dict[str, RegisteredResource | None] = {
        repo.urn: with_inputs(repo, imageTagMutability="MUTABLE"),
    }
    for lifecycle in run.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy"):  # as at preview
        edits[lifecycle.urn] = with_inputs(lifecycle, repository=UNKNOWN_STRING_VALUE)
    resources = replace_resources(run.resources, edits)

    response = analyzer.AnalyzeStack(
        analyzer_pb2.AnalyzeStackRequest(resources=[_analyzer_resource(r) for r in resources])
    )
    (diagnostic,) = response.diagnostics
    assert diagnostic.policyName == "rg-tag-002"
    assert diagnostic.enforcementLevel == MANDATORY
    assert diagnostic.urn == repo.urn
    assert "RG-TAG-002: tags are mutable (MUTABLE) (payments/api)" in diagnostic.message
