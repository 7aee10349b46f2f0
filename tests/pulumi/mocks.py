"""Run Pulumi programs under mocks and keep every resource they register.

`run_program(fn, config)` gives back a `ProgramRun`: each registered resource
(type token, logical name, URN, parent URN, inputs as the engine received
them — camelCase keys, nested types as dicts) and the stack exports. The
policy-pack tests reuse this to feed the components' declared state to the
policies, so keep `RegisteredResource` stable.

Why a custom monitor: `MockResourceArgs` has no parent, and "every child has
the component as parent" is part of the component contract we test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks

ACCOUNT_ID = "123456789012"
MOCK_BCRYPT_ROUNDS = 4
"""The lowest cost Go's bcrypt accepts: the mocked hashes are real, and cheap."""


def mock_password(name: str) -> str:
    """What a mocked `random.RandomPassword` named `name` generates (its bcrypt hash is real)."""
    return f"mock-password-{name}"


def mock_pem(kind: str, name: str) -> str:
    """The placeholder a mocked pulumi-tls resource returns instead of a PEM;
    tests that run rendered files substitute real test certificates for it."""
    return f"MOCK-PEM {kind} {name}\n"


@dataclass(frozen=True)
class RegisteredResource:
    """One resource the program registered, as the engine would see it."""

    type: str
    name: str
    urn: str
    parent_urn: str
    inputs: dict[str, Any]
    custom: bool


@dataclass
class ProgramRun:
    """What a mocked program run produced."""

    resources: list[RegisteredResource] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    result: Any = None

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> RegisteredResource:
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token} {name or ''}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> RegisteredResource:
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(urn)

    def children_of(self, parent: RegisteredResource) -> list[RegisteredResource]:
        return [r for r in self.resources if r.parent_urn == parent.urn]


class RecordingMocks(pulumi.runtime.Mocks):
    """Echo inputs as outputs and add the computed attributes the components
    read (arn, repositoryUrl, keyId), like a provider would after create."""

    def __init__(self, region: str = "us-east-1", account_id: str = ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[(args.typ, args.name)] = dict(args.inputs)
        outputs = dict(args.inputs)
        rid = f"{args.name}-id"
        if args.typ == "aws:ecr/repository:Repository":
            repo = args.inputs.get("name", args.name)
            host = f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com"
            outputs["repositoryUrl"] = f"{host}/{repo}"
            outputs["arn"] = f"arn:aws:ecr:{self.region}:{self.account_id}:repository/{repo}"
            outputs["registryId"] = self.account_id
        elif args.typ == "aws:kms/key:Key":
            outputs["keyId"] = rid
            outputs["arn"] = f"arn:aws:kms:{self.region}:{self.account_id}:key/{rid}"
        else:
            outputs.update(self._self_hosted_outputs(args))
        return rid, outputs

    def _self_hosted_outputs(self, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        """Computed attributes of the self-hosted components' resources."""
        if args.typ == "random:index/randomPassword:RandomPassword":
            password = mock_password(args.name)
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=MOCK_BCRYPT_ROUNDS)).decode()
            return {"result": password, "bcryptHash": hashed}
        if args.typ == "tls:index/privateKey:PrivateKey":
            return {"privateKeyPem": mock_pem("private-key", args.name)}
        if args.typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
            return {"certPem": mock_pem("certificate", args.name)}
        if args.typ == "tls:index/certRequest:CertRequest":
            return {"certRequestPem": mock_pem("request", args.name)}
        if args.typ == "aws:s3/bucket:Bucket":
            return {"bucket": args.name, "arn": f"arn:aws:s3:::{args.name}"}
        if args.typ == "harbor:index/registry:Registry":
            return {"registryId": 7}
        if args.typ == "harbor:index/project:Project":
            return {"projectId": "3"}
        if args.typ in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"):
            return {"name": args.name, "arn": f"arn:aws:iam::{self.account_id}:role/{args.name}"}
        return {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:role/deployer",
                "userId": "AROAEXAMPLE",
                "id": self.account_id,
            }
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "id": self.region}
        raise NotImplementedError(f"no mock for invoke {args.token}")


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps the parent URN of every registration next to the inputs."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RegisteredResource] = []
        self._mocks = mocks

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recorded.append(
                RegisteredResource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent_urn=request.parent,
                    inputs=self._mocks.inputs.get((request.type, request.name), {}),
                    custom=bool(request.custom),
                )
            )
        return response


STACK_SECRETS = {"regguard:siteLdapSearchPassword": "ldap-bind-test-secret"}
"""Secrets the stack files' comments tell users to set with `pulumi config set --secret`."""


def stack_config(stack_file: Path) -> dict[str, str]:
    """A stack file's `config:` as the CLI hands it to the program: every
    value a string, structured values as JSON; plus the secrets users set."""
    raw = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
    return {
        **STACK_SECRETS,
        **{
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in (raw.get("config") or {}).items()
        },
    }


def run_program(
    program: Callable[[], Any],
    config: Mapping[str, str],
    *,
    stack: str = "test",
    region: str = "us-east-1",
) -> ProgramRun:
    """Run `program` under fresh mocks with `config`; wait for every
    registration; return what was registered and exported.

    A fresh event loop and root resource each time, as DESIGN.md advises,
    so runs do not leak into each other. Exceptions from the program
    propagate unchanged.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.settings.set_root_resource(None)
        mocks = RecordingMocks(region=region)
        monitor = _RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(
            mocks, project="regguard", stack=stack, preview=False, monitor=monitor
        )
        pulumi.runtime.set_all_config(dict(config))
        run = ProgramRun()

        def body() -> Any:
            run.result = program()
            return run.result

        pulumi.runtime.test(body)()
        root = pulumi.runtime.settings.get_root_resource()
        exports = dict(getattr(root, "outputs", {}) or {})
        # Resolve while the run's loop is alive: Output futures belong to it.
        run.exports = loop.run_until_complete(pulumi.Output.from_input(exports).future()) or {}
        run.resources = list(monitor.recorded)
        return run
    finally:
        pulumi.runtime.settings.set_root_resource(None)
        asyncio.set_event_loop(None)
        loop.close()

