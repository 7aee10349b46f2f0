"""The read-only audit role: its documents (pure), the component under mocks, and the
policy checked against what the ECR collector's source actually calls."""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import botocore.session
import pulumi
import pytest
from pulumi.runtime import rpc

from audits.collectors.ecr_facts import IMAGE_WRITE_ACTIONS
from components.ecr_audit_role import (
    AUDIT_POLICY_NAME,
    EcrAuditRole,
    EcrAuditRoleArgs,
    audit_policy_document,
    auditor_policy_document,
    trust_policy_document,
)
from tests.pulumi.mocks import ProgramRun

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
AUDITOR = "222233334444"
COLLECTORS = Path(__file__).resolve().parents[2] / "audits" / "collectors"
COLLECTOR_MODULES = ("ecr.py", "ecr_calls.py", "ecr_iam.py", "ecr_signatures.py", "ecr_facts.py")

# The boto3 client types (mypy_boto3 stubs) the collector annotates its clients with.
CLIENT_TYPES = {"ECRClient": "ecr", "IAMClient": "iam", "CloudTrailClient": "cloudtrail"}
# Client attributes that make no AWS call.
NOT_CALLS = frozenset({"meta", "exceptions", "can_paginate", "close"})
READ_VERB = re.compile(r"^(Describe|Get|List|BatchGet)[A-Z]")


def policy_actions(document: dict[str, Any]) -> list[str]:
    return [a for statement in document["Statement"] for a in statement["Action"]]


# ------------------------------------------------------------------ the collector's calls


@functools.cache
def _operations(service: str) -> dict[str, str]:
    """boto3 method name -> IAM action. For ECR, IAM and CloudTrail the action is the
    service's signing name and the API operation's name (ecr:DescribeImages)."""
    model = botocore.session.get_session().get_service_model(service)
    return {botocore.xform_name(op): f"{model.signing_name}:{op}" for op in model.operation_names}


def _client_service(annotation: ast.expr | None) -> str | None:
    """The service of a client type named in an annotation (`ECRClient | None` too)."""
    for part in ast.walk(annotation) if annotation is not None else ():
        if isinstance(part, ast.Name) and part.id in CLIENT_TYPES:
            return CLIENT_TYPES[part.id]
    return None


class _ClientUse(ast.NodeVisitor):
    """What the code does with ECR, IAM and CloudTrail clients. A client is a name in
    scope (a parameter annotated with a client type, or a local assigned from
    `<session>.client("<service>")`) or an attribute known to hold one (a field
    annotated with a client type, or `self.x = <client>`); `fields` carries those
    across modules. A method counts whether called or passed on (`partial(client.op)`)."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields
        self.scopes: list[dict[str, str]] = [{}]
        self.uses: set[tuple[str, str]] = set()  # (service, boto3 method or paginator name)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        params = {a.arg: service for a in arguments if (service := _client_service(a.annotation))}
        self.scopes.append({**self.scopes[-1], **params})
        self.generic_visit(node)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name) and (service := _client_service(node.annotation)):
            self.fields[node.target.id] = service
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        service = self._service(node.value) or _created_client(node.value)
        for target in node.targets if service else ():
            if isinstance(target, ast.Attribute):
                self.fields[target.attr] = service
            elif isinstance(target, ast.Name):
                self.scopes[-1][target.id] = service
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "get_paginator" and (service := self._service(func.value)):
            (name,) = [a.value for a in node.args if isinstance(a, ast.Constant)]
            self.uses.add((service, str(name)))
            for child in (*node.args, *node.keywords):
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if (service := self._service(node.value)) is not None:
            assert node.attr != "get_paginator", "a paginator whose name is not a literal"
            self.uses.add((service, node.attr))
        self.generic_visit(node)

    def _service(self, receiver: ast.expr) -> str | None:
        if isinstance(receiver, ast.Name):
            return self.scopes[-1].get(receiver.id)
        return self.fields.get(receiver.attr) if isinstance(receiver, ast.Attribute) else None


def _created_client(value: ast.expr) -> str | None:
    """`"ecr"` for `<session>.client("ecr", ...)`, None for anything else."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "client":
        named = [str(a.value) for a in value.args[:1] if isinstance(a, ast.Constant)]
        return next((n for n in named if n in CLIENT_TYPES.values()), None)
    return None


def called_actions(sources: Iterable[str]) -> set[str]:
    """Every IAM action the given modules use on an ECR, IAM or CloudTrail client."""
    trees = [ast.parse(source) for source in sources]
    fields: dict[str, str] = {}
    for tree in trees:  # first pass: which attributes hold clients, wherever they are declared
        _ClientUse(fields).visit(tree)
    actions: set[str] = set()
    for tree in trees:
        finder = _ClientUse(fields)
        finder.visit(tree)
        for service, method in finder.uses:
            operations = _operations(service)
            if method in operations:
                actions.add(operations[method])
            else:
                assert method in NOT_CALLS, f"{service} client attribute {method!r} is not an operation"
    return actions


def collector_sources() -> list[str]:
    return [(COLLECTORS / name).read_text(encoding="utf-8") for name in COLLECTOR_MODULES]


def test_policy_lists_exactly_what_the_collector_calls() -> None:
    called = called_actions(collector_sources())
    listed = set(policy_actions(audit_policy_document()))
    assert called - listed == set(), "the collector calls actions the audit role may not"
    assert listed - called == set(), "the audit role may do what the collector never calls"
    assert {a.split(":")[0] for a in called} == {"ecr", "iam", "cloudtrail"}


def test_a_new_collector_call_is_found() -> None:
    """The source scan is real: one more call, through a paginator or a method
    passed on, shows up as an action the policy lacks."""
    extra = (
        "def more(ecr: ECRClient, trail: CloudTrailClient | None) -> None:\n"
        "    ecr.get_paginator('list_images')\n"
        "    partial(trail.list_trails)\n"
        "    member = session.client('ecr', region_name='eu-west-1')\n"
        "    member.put_image()\n"
        "class Reader:\n"
        "    def __init__(self, iam: IAMClient) -> None:\n"
        "        self._admin = iam\n"
        "    def go(self) -> None:\n"
        "        self._admin.create_access_key()\n"
    )
    called = called_actions([*collector_sources(), extra])
    new = called - set(policy_actions(audit_policy_document()))
    assert new == {"ecr:ListImages", "cloudtrail:ListTrails", "ecr:PutImage", "iam:CreateAccessKey"}


def test_audit_policy_is_read_only() -> None:
    document = audit_policy_document()
    assert {s["Effect"] for s in document["Statement"]} == {"Allow"}
    actions = policy_actions(document)
    assert len(actions) == len(set(actions))
    for action in actions:
        service, name = action.split(":")
        assert name in {op.split(":")[1] for op in _operations(service).values()}, f"{action} is no {service} action"
        assert READ_VERB.match(name), f"{action} is not a read"
    assert not set(actions) & set(IMAGE_WRITE_ACTIONS)
    assert not [a for a in actions if a.startswith("sts:") or "*" in a]


def test_auditor_policy_lists_accounts_and_assumes_only_the_role() -> None:
    listing, assume = auditor_policy_document("OrgAudit")["Statement"]
    assert (listing["Action"], listing["Resource"]) == (["organizations:ListAccounts"], "*")
    assert (assume["Action"], assume["Resource"]) == (["sts:AssumeRole"], "arn:aws:iam::*:role/OrgAudit")


# ------------------------------------------------------------------ trust policy


def test_trust_names_the_auditor_and_nothing_else() -> None:
    (statement,) = trust_policy_document([f"arn:aws:iam::{AUDITOR}:root"])["Statement"]
    assert statement == {
        "Sid": "RegguardAuditorAssumes",
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{AUDITOR}:root"]},
        "Action": "sts:AssumeRole",
    }


def test_trust_conditions() -> None:
    (statement,) = trust_policy_document(
        [f"arn:aws:iam::{AUDITOR}:role/regguard"], external_id="regguard-7f3a", organization_id="o-a1b2c3d4e5"
    )["Statement"]
    assert statement["Condition"] == {
        "StringEquals": {"sts:ExternalId": "regguard-7f3a", "aws:PrincipalOrgID": "o-a1b2c3d4e5"}
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give exactly one"),
        ({"auditor_account_id": AUDITOR, "auditor_principal_arns": (f"arn:aws:iam::{AUDITOR}:root",)}, "exactly one"),
        ({"auditor_account_id": "2222"}, "auditor_account_id: expected a 12-digit"),
        ({"auditor_principal_arns": ("*",)}, r"auditor_principal_arns\[0\]: '\*' refused"),
        ({"auditor_principal_arns": (AUDITOR,)}, r"auditor_principal_arns\[0\]: expected an IAM role"),
        ({"auditor_account_id": AUDITOR, "role_name": "regguard audit"}, "role_name"),
        ({"auditor_account_id": AUDITOR, "external_id": "x"}, "external_id"),
        ({"auditor_account_id": AUDITOR, "organization_id": "r-abcd"}, "organization_id"),
        ({"auditor_account_id": AUDITOR, "max_session_duration": 600}, "max_session_duration"),
        ({"auditor_account_id": AUDITOR, "tags": {"regguard:managed": "no"}}, "regguard: prefix is reserved"),
    ],
)
def test_args_refuse_bad_input(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EcrAuditRoleArgs(**kwargs)


# ------------------------------------------------------------------ component under mocks


def _audit_role(mocked: Callable[..., ProgramRun], args: EcrAuditRoleArgs) -> ProgramRun:
    def program() -> None:
        pulumi.export("role_arn", EcrAuditRole("audit", args).role_arn)

    return mocked(program, {"aws:region": "us-east-1"})


def test_role_and_policy_are_children_of_the_component(mocked: Callable[..., ProgramRun]) -> None:
    run = _audit_role(mocked, EcrAuditRoleArgs(auditor_account_id=AUDITOR, tags={"team": "security"}))
    component = run.one("regguard:ecr:EcrAuditRole")
    assert sorted(c.type for c in run.children_of(component)) == [ROLE, ROLE_POLICY]
    role = run.one(ROLE).inputs
    assert (role["name"], role["maxSessionDuration"]) == ("RegguardAudit", 3600)
    assert role["tags"] == {"team": "security", "regguard:managed": "true"}
    trust = json.loads(role["assumeRolePolicy"])
    assert trust == trust_policy_document([f"arn:aws:iam::{AUDITOR}:root"])
    policy = run.one(ROLE_POLICY).inputs
    assert (policy["name"], policy["role"]) == (AUDIT_POLICY_NAME, "audit-role-id")
    assert json.loads(policy["policy"]) == audit_policy_document()
    assert run.exports == {"role_arn": "arn:aws:iam::123456789012:role/audit-role"}


@pytest.mark.parametrize("secret", [False, True])
def test_external_id_becomes_a_trust_condition(mocked: Callable[..., ProgramRun], secret: bool) -> None:
    principal = f"arn:aws:iam::{AUDITOR}:role/regguard"

    def program() -> None:
        external_id = pulumi.Output.secret("regguard-7f3a") if secret else "regguard-7f3a"
        args = EcrAuditRoleArgs(
            auditor_principal_arns=(principal,), external_id=external_id, organization_id="o-a1b2c3d4e5"
        )
        EcrAuditRole("audit", args)

    run = mocked(program, {"aws:region": "us-east-1"})
    trust = run.one(ROLE).inputs["assumeRolePolicy"]
    if secret:  # a secret input reaches the engine wrapped, and stays secret
        assert trust[rpc._special_sig_key] == rpc._special_secret_sig
        trust = trust["value"]
    (statement,) = json.loads(trust)["Statement"]
    assert statement["Principal"] == {"AWS": [principal]}
    assert statement["Condition"]["StringEquals"] == {
        "sts:ExternalId": "regguard-7f3a",
        "aws:PrincipalOrgID": "o-a1b2c3d4e5",
    }
