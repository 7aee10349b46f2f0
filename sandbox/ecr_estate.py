"""The AWS part of the local estate: a moto server seeded with an ECR registry
that is partly compliant and partly not, so every ECR rule has something to pass
and something to fail.

What `seed_ecr_estate` creates (account 123456789012, moto's default):

* `prod/api`: IMMUTABLE, KMS customer key, lifecycle, registry scan rule `prod/*` and
  scan on push, pull policy for the account only; v1.0.0 and v1.1.0, both cosign-signed
  (real signatures, see below).
* `prod/web`: IMMUTABLE_WITH_EXCLUSION (`dev-*`), KMS customer key, lifecycle, scan rule,
  `*` policy restricted by `aws:PrincipalOrgID`; v2.0.0 (signed) and dev-42.
* `legacy/app`: MUTABLE, AES256, no lifecycle, no scanning, `*` may pull; latest, 0.9
  and one untagged image.
* `team/tools`: MUTABLE_WITH_EXCLUSION (`release-*`), KMS with aws/ecr, no lifecycle,
  no scanning, no policy; latest, release-1.
* `public/base`: IMMUTABLE, AES256, lifecycle, no scanning, `*` may pull but declared
  public in the target (`public_repositories`); 1.0.0.

Registry: BASIC scanning with one SCAN_ON_PUSH rule for `prod/*`; replication of
`prod` to us-west-2. IAM: `ci-pusher` (inline push policy, one active and one
inactive key), `release-bot` (push through group `release-bots`' managed policy,
one key), `auditor` (read-only, one key: never listed). CloudTrail: a multi-region
trail that was created but never started, so access is *not* logged.

Signatures are real cosign key-based signatures made with `sandbox.signing` for
`<account>.dkr.ecr.<region>.amazonaws.com/<repo>@<digest>` and put under cosign's
`sha256-<hex>.sig` tag, so the collector can verify them with the public key. The
key is the demo estate's release key when `start_estate` wrote one into the shared
workdir (`keys/release.key`), so one `trusted_keys` entry covers every target;
otherwise the ECR estate generates its own pair under `ecr/keys`.

moto cannot backdate an access key's CreateDate, so the keys are "now": RG-CRED-001
(no IAM user push keys in prod) fails on them, RG-CRED-002 (rotation age) passes;
the age judgement is covered by unit tests instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from sandbox.moto_server import MOTO_CREDENTIALS, MotoServer, OnMotoServer, start_moto_server
from sandbox.signing import KeyPair, generate_key_pair, signature_for

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
TARGET_NAME = "aws-core"
PUBLIC_REPOSITORIES = ("public/*",)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

ESTATE_KEY = Path("keys") / "release.key"
"""Where `sandbox.estate.start_estate` writes the estate's signing key, relative to
the workdir it passes to extra services (`generate_key_pair(workdir / "keys", "release")`)."""

PUSH_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:InitiateLayerUpload",
                "ecr:UploadLayerPart",
                "ecr:CompleteLayerUpload",
                "ecr:PutImage",
            ],
            "Resource": "*",
        }
    ],
}
READ_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ecr:Describe*", "ecr:List*", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": "*",
        }
    ],
}
FULL_ECR_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
}
LIFECYCLE_POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "drop untagged images after two weeks",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "keep the last 50 releases",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["v"],
                "countType": "imageCountMoreThan",
                "countNumber": 50,
            },
            "action": {"type": "expire"},
        },
    ]
}


def pull_policy(principal: Any, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """A repository policy letting `principal` pull, optionally under `condition`."""
    statement: dict[str, Any] = {
        "Sid": "pull",
        "Effect": "Allow",
        "Principal": principal,
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def image_manifest(seed: str, *, layers: int = 1) -> str:
    """A distinct OCI image manifest; moto derives the digest from the layer digests."""
    layer_list = [
        {"mediaType": OCI_LAYER, "size": 1024 + i, "digest": _digest(f"{seed}/layer/{i}")} for i in range(layers)
    ]
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": 512, "digest": _digest(f"{seed}/config")},
            "layers": layer_list,
        }
    )


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def cosign_tag(digest: str) -> str:
    return digest.replace(":", "-", 1) + ".sig"


def registry_address(region: str = REGION, account_id: str = ACCOUNT_ID) -> str:
    """The ECR registry host images are named by (and signatures sign for)."""
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com"


def put_signature(ecr: Any, repository: str, digest: str, private_key: Path, region: str = REGION) -> str:
    """Sign `<registry>/<repository>@<digest>` as cosign does and put the signature
    manifest under its `sha256-<hex>.sig` tag (with its real digest); returns the tag."""
    tag, manifest = signature_for(registry_address(region), repository, digest, private_key)
    ecr.put_image(
        repositoryName=repository,
        imageManifest=manifest.data.decode("utf-8"),
        imageManifestMediaType=manifest.media_type,
        imageDigest=manifest.digest,
        imageTag=tag,
    )
    return tag


@dataclass(frozen=True)
class RepoSpec:
    name: str
    mutability: str
    exclusions: tuple[str, ...] = ()
    kms: str | None = None  # "cmk", "aws" or None (AES256)
    lifecycle: bool = False
    scan_on_push: bool = False
    policy: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    signed: tuple[str, ...] = ()
    untagged: int = 0


def estate_repositories() -> list[RepoSpec]:
    org = {"StringEquals": {"aws:PrincipalOrgID": "o-regguard01"}}
    return [
        RepoSpec(
            "prod/api", "IMMUTABLE", kms="cmk", lifecycle=True, scan_on_push=True,
            policy=pull_policy({"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}),
            tags=("v1.0.0", "v1.1.0"), signed=("v1.0.0", "v1.1.0"),
        ),
        RepoSpec(
            "prod/web", "IMMUTABLE_WITH_EXCLUSION", exclusions=("dev-*",), kms="cmk",
            lifecycle=True, scan_on_push=True, policy=pull_policy("*", org),
            tags=("v2.0.0", "dev-42"), signed=("v2.0.0",),
        ),
        RepoSpec(
            "legacy/app", "MUTABLE", policy=pull_policy("*"), tags=("latest", "0.9"), untagged=1
        ),
        RepoSpec(
            "team/tools", "MUTABLE_WITH_EXCLUSION", exclusions=("release-*",), kms="aws",
            tags=("latest", "release-1"),
        ),
        RepoSpec(
            "public/base", "IMMUTABLE", lifecycle=True, policy=pull_policy({"AWS": "*"}),
            tags=("1.0.0",),
        ),
    ]  # fmt: skip


def aws_session(region: str = REGION) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )


def seed_ecr_estate(endpoint_url: str, signing_key: Path, region: str = REGION) -> dict[str, Any]:
    """Create the estate described in the module docstring, signing with the private
    key `signing_key`; return what was made (repository -> digests by tag, the KMS
    key, users and their masked key ids)."""
    session = aws_session(region)
    kms_key = session.client("kms", endpoint_url=endpoint_url).create_key(Description="regguard ECR images")[
        "KeyMetadata"
    ]["Arn"]
    ecr = session.client("ecr", endpoint_url=endpoint_url)
    repos = {spec.name: _seed_repository(ecr, spec, kms_key, signing_key, region) for spec in estate_repositories()}
    _seed_registry(ecr, region)
    users = _seed_iam(session.client("iam", endpoint_url=endpoint_url))
    trail = _seed_cloudtrail(session, endpoint_url, region)
    return {
        "region": region,
        "account_id": ACCOUNT_ID,
        "kms_key": kms_key,
        "repositories": repos,
        "users": users,
        "trail": trail,
    }


def _seed_repository(ecr: Any, spec: RepoSpec, kms_key: str, signing_key: Path, region: str) -> dict[str, str]:
    args: dict[str, Any] = {
        "repositoryName": spec.name,
        "imageTagMutability": spec.mutability,
        "imageScanningConfiguration": {"scanOnPush": spec.scan_on_push},
    }
    if spec.exclusions:
        args["imageTagMutabilityExclusionFilters"] = [{"filterType": "WILDCARD", "filter": f} for f in spec.exclusions]
    if spec.kms == "cmk":
        args["encryptionConfiguration"] = {"encryptionType": "KMS", "kmsKey": kms_key}
    elif spec.kms == "aws":
        args["encryptionConfiguration"] = {
            "encryptionType": "KMS",
            "kmsKey": f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:alias/aws/ecr",
        }
    ecr.create_repository(**args)
    if spec.lifecycle:
        ecr.put_lifecycle_policy(repositoryName=spec.name, lifecyclePolicyText=json.dumps(LIFECYCLE_POLICY))
    if spec.policy is not None:
        ecr.set_repository_policy(repositoryName=spec.name, policyText=json.dumps(spec.policy))
    return push_images(
        ecr, spec.name, spec.tags, signed=spec.signed, untagged=spec.untagged, signing_key=signing_key, region=region
    )


def push_images(
    ecr: Any,
    repository: str,
    tags: Sequence[str],
    *,
    signed: Sequence[str] = (),
    untagged: int = 0,
    signing_key: Path | None = None,
    region: str = REGION,
) -> dict[str, str]:
    """Put one image per tag (and a real cosign signature, made with the private key
    `signing_key`, for each of the `signed` tags); tag -> digest."""
    if signed and signing_key is None:
        raise ValueError("signed tags need a signing_key")
    digests: dict[str, str] = {}
    for tag in tags:
        image = ecr.put_image(
            repositoryName=repository, imageManifest=image_manifest(f"{repository}:{tag}"), imageTag=tag
        )["image"]
        digests[tag] = image["imageId"]["imageDigest"]
    for tag in signed:
        assert signing_key is not None
        put_signature(ecr, repository, digests[tag], signing_key, region)
    for i in range(untagged):
        ecr.put_image(repositoryName=repository, imageManifest=image_manifest(f"{repository}@{i}"))
    return digests


def _seed_registry(ecr: Any, region: str) -> None:
    ecr.put_registry_scanning_configuration(
        scanType="BASIC",
        rules=[
            {
                "scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": [{"filter": "prod/*", "filterType": "WILDCARD"}],
            }
        ],
    )
    other = "us-west-2" if region != "us-west-2" else "us-east-1"
    ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": [
                {
                    "destinations": [{"region": other, "registryId": ACCOUNT_ID}],
                    "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}],
                }
            ]
        }
    )


def _seed_iam(iam: Any) -> dict[str, list[str]]:
    """Users -> their active access key ids, masked as the collector reports them."""
    policy_arn = iam.create_policy(PolicyName="ecr-full", PolicyDocument=json.dumps(FULL_ECR_POLICY))["Policy"]["Arn"]
    iam.create_group(GroupName="release-bots")
    iam.attach_group_policy(GroupName="release-bots", PolicyArn=policy_arn)

    iam.create_user(UserName="ci-pusher")
    iam.put_user_policy(UserName="ci-pusher", PolicyName="ecr-push", PolicyDocument=json.dumps(PUSH_POLICY))
    iam.create_user(UserName="release-bot")
    iam.add_user_to_group(GroupName="release-bots", UserName="release-bot")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(UserName="auditor", PolicyName="ecr-read", PolicyDocument=json.dumps(READ_POLICY))

    out: dict[str, list[str]] = {}
    for user in ("ci-pusher", "release-bot", "auditor"):
        key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
        out[user] = [f"{key[:4]}…{key[-4:]}"]
    retired = iam.create_access_key(UserName="ci-pusher")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="ci-pusher", AccessKeyId=retired, Status="Inactive")
    return out


def _seed_cloudtrail(session: boto3.Session, endpoint_url: str, region: str) -> str:
    s3 = session.client("s3", endpoint_url=endpoint_url)
    cloudtrail = session.client("cloudtrail", endpoint_url=endpoint_url)
    return create_trail(s3, cloudtrail, bucket="regguard-trail-logs", region=region)


def create_trail(s3: Any, cloudtrail: Any, *, bucket: str, region: str, name: str = "org-trail") -> str:
    """A multi-region trail writing to a new bucket `bucket`; created, never started
    (IsLogging stays false). Returns the trail's name."""
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=True)
    return name


@dataclass
class EcrEstate(OnMotoServer):
    """The seeded moto server as one sandbox service (the Service protocol:
    `name`, `targets`, `env`, `pids`, `stop`)."""

    name: str
    region: str
    server: MotoServer
    keys: KeyPair
    seeded: dict[str, Any] = field(default_factory=dict)

    @property
    def trusted_keys(self) -> list[Path]:
        """The public key the seeded signatures verify with (the audit's `trusted_keys`)."""
        return [self.keys.public_key]

    @property
    def endpoint_url(self) -> str:
        return self.server.url

    @property
    def targets(self) -> list[dict[str, Any]]:
        return [
            {
                "name": self.name,
                "kind": "ecr",
                "region": self.region,
                "endpoint_url": self.server.url,
                "public_repositories": list(PUBLIC_REPOSITORIES),
            }
        ]

    @property
    def env(self) -> dict[str, str]:
        """moto's dummy credentials (not secrets) plus the default region."""
        return {**MOTO_CREDENTIALS, "AWS_DEFAULT_REGION": self.region}


def signing_keys(workdir: Path, private_key: Path | None = None) -> KeyPair:
    """The key pair to sign with: `private_key` (its public key beside it as `.pub`),
    else the estate's release key when `start_estate` wrote one into `workdir`,
    else a pair generated under `workdir/ecr/keys`."""
    if private_key is None and (workdir / ESTATE_KEY).is_file():
        private_key = workdir / ESTATE_KEY
    if private_key is None:
        return generate_key_pair(workdir / "ecr" / "keys", "cosign")
    public_key = private_key.with_suffix(".pub")
    if not public_key.is_file():
        raise FileNotFoundError(f"no public key {public_key} beside {private_key}")
    return KeyPair(private_key, public_key)


def start_ecr_estate(
    workdir: Path,
    *,
    detach: bool = False,
    name: str = TARGET_NAME,
    region: str = REGION,
    private_key: Path | None = None,
) -> EcrEstate:
    """Start moto under `workdir/ecr`, seed it (signatures made with `signing_keys`),
    and return the running estate; the server is stopped again if seeding fails."""
    keys = signing_keys(workdir, private_key)
    server = start_moto_server(workdir / "ecr", detach=detach)
    try:
        seeded = seed_ecr_estate(server.url, keys.private_key, region)
    except BaseException:
        server.stop()
        raise
    return EcrEstate(name=name, region=region, server=server, keys=keys, seeded=seeded)
