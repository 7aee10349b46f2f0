"""A self-hosted Docker Distribution (`registry:2`) on a VM, hardened by default.

`DistributionVm` declares a VM running Debian's `docker-registry` from
cloud-init rendered with Jinja2 (`components/templates/`): the registry's
`config.yml` comes from the very template the sandbox runs in the real binary
(`registry-config.yml.j2`), so what the tests serve is what the VM serves.

What every VM gets (the catalog's rules it answers in brackets):

* TLS always, minimum TLS 1.2: a server certificate from an internal CA made
  with pulumi-tls, or the registry's built-in ACME client; plain HTTP is never
  served (RG-TLS-*, RG-AUTH-002).
* htpasswd with one generated password per identity (pulumi-random's bcrypt
  hash), never one shared admin account (RG-AUTH-001/003).
* `storage.delete` on and garbage collection on a systemd timer (RG-RET-001).
* S3 blob storage with server-side encryption under a customer KMS key with
  rotation, public access blocked (RG-ENC-001); the same key encrypts the root
  volume.
* A notifications endpoint for push/pull events (RG-MON-001).
* A security group admitting only the configured CIDRs on the registry port,
  never 0.0.0.0/0 or ::/0 in production (RG-NET-001); IMDSv2 only; no public IP.

The cloud-specific part is `AwsVmPlacement` and the `_Aws*` helpers below:
rendering (`render_cloud_init`) takes plain values and knows no cloud, so a
GCE or Azure placement only adds its own resources. Every child resource is
declared at the top level of `__init__`; only the user data text is computed
in an `apply` (from the certificate, hashes, bucket and key it needs).

It is also Distribution's provisioner in the kind table: `parse_registry`
reads a `kind: distribution` entry of `regguard:registries`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import jinja2
import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pulumi_tls as tls
import yaml

from audits.vocabulary import is_production_environment
from components import stack_config as sc
from components.baseline import Baseline
from components.ecr import regguard_tags
from components.stack_config import StackConfigError, StackContext
from sandbox.registry_config import (
    TEMPLATE_DIR,
    AcmeSettings,
    HtpasswdSettings,
    NotificationEndpoint,
    RegistryConfig,
    S3Storage,
    TlsSettings,
    render_registry_config,
)

TlsMode = Literal["internal-ca", "acme"]
TLS_MODES: tuple[str, ...] = get_args(TlsMode)

CONFIG_DIR = "/etc/docker/registry"
CONFIG_PATH = f"{CONFIG_DIR}/config.yml"
HTPASSWD_PATH = f"{CONFIG_DIR}/htpasswd"
CERT_PATH = f"{CONFIG_DIR}/tls/registry.crt"
KEY_PATH = f"{CONFIG_DIR}/tls/registry.key"
CA_PATH = f"{CONFIG_DIR}/tls/ca.crt"
ACME_CACHE = "/var/lib/docker-registry/acme-cache.json"
REGISTRY_OWNER = "docker-registry:docker-registry"
ROOT_OWNER = "root:root"
CLOUD_INIT_TEMPLATE = "cloud-init.yml.j2"
PUBLIC_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
CA_VALIDITY_HOURS = 5 * 365 * 24
CERT_VALIDITY_HOURS = 365 * 24
CERT_EARLY_RENEWAL_HOURS = 60 * 24
"""Renewed at the first `pulumi up` within 60 days of expiry: RG-TLS-003 warns at 30."""

HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
_IDENTITY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
_SHARED_NAMES = frozenset({"admin", "root", "registry", "docker", "user", "shared"})
_AWS_ID = {"vpc_id": "vpc-", "subnet_id": "subnet-", "ami_id": "ami-"}


# --------------------------------------------------------------------- args


@dataclass(frozen=True)
class AwsVmPlacement:
    """The AWS-specific part of a registry VM: network, image and size."""

    vpc_id: str
    subnet_id: str
    ami_id: str
    instance_type: str = "t3.small"
    root_volume_gb: int = 30
    availability_zone: str | None = None

    def __post_init__(self) -> None:
        for key, prefix in _AWS_ID.items():
            value = getattr(self, key)
            if not isinstance(value, str) or not re.match(rf"^{prefix}[0-9a-f]{{8,17}}$", value):
                raise ValueError(f"{key}: expected an id like {prefix}0123456789abcdef0")
        zone = self.availability_zone
        if zone is not None and (not isinstance(zone, str) or not re.match(r"^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$", zone)):
            raise ValueError("availability_zone: expected a zone such as eu-central-1a")
        check_at_least(self.root_volume_gb, 8, "root_volume_gb")


@dataclass(frozen=True)
class DistributionVmArgs:
    """One registry VM. `identities` get one htpasswd account each (the
    auditor's included: `auditor` must be one of them); `allowed_cidrs` are the
    only networks the security group admits on `port`."""

    hostname: str
    environment: str
    baseline: Baseline
    region: str
    placement: AwsVmPlacement
    identities: tuple[str, ...]
    allowed_cidrs: tuple[str, ...]
    auditor: str = "regguard-auditor"
    notifications_url: str | None = None
    tls_mode: TlsMode = "internal-ca"
    acme_email: str | None = None
    port: int = 443
    gc_schedule: str = "Sun *-*-* 03:00:00"
    package_mirror: str | None = None
    egress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.hostname, str) or not HOSTNAME_RE.match(self.hostname):
            raise ValueError(f"hostname: {self.hostname!r} is not a DNS name such as registry.internal.example")
        self._check_identities()
        self._check_cidrs()
        self._check_tls()
        self._check_notifications()
        if self.baseline.public:
            raise ValueError("baseline.public: a Distribution VM always requires authentication")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError("port: expected a TCP port number")
        if not isinstance(self.gc_schedule, str) or not re.match(r"^[\w*:,/ .~-]{1,64}$", self.gc_schedule):
            raise ValueError("gc_schedule: expected a systemd OnCalendar expression such as 'Sun *-*-* 03:00:00'")
        if self.package_mirror is not None and not re.match(r"^https?://[^/\s]+(/\S*)?$", str(self.package_mirror)):
            raise ValueError("package_mirror: expected the URL of a Debian mirror such as http://mirror.internal/debian")
        check_networks(self.egress_cidrs, "egress_cidrs")
        for key in self.tags:
            if key.startswith("regguard:"):
                raise ValueError(f"tags: {key!r}: the regguard: prefix is reserved")

    def _check_identities(self) -> None:
        if isinstance(self.identities, str) or len(self.identities) < 2:
            raise ValueError(
                "identities: name one account per identity, at least two (e.g. ci-publisher and "
                "regguard-auditor): a single account ends up shared by every client"
            )
        for i, identity in enumerate(self.identities):
            if not isinstance(identity, str) or not _IDENTITY_RE.match(identity):
                raise ValueError(f"identities[{i}]: {identity!r}: lowercase letters, digits, '.', '_', '-'")
            if identity in _SHARED_NAMES:
                raise ValueError(f"identities[{i}]: {identity!r} names no one; use the identity's own name")
        if len(set(self.identities)) != len(self.identities):
            raise ValueError("identities: an identity is listed twice")
        if self.auditor not in self.identities:
            raise ValueError(f"auditor: {self.auditor!r} is not one of the identities")

    def _check_cidrs(self) -> None:
        check_networks(self.allowed_cidrs, "allowed_cidrs")
        for i, cidr in enumerate(self.allowed_cidrs):
            if cidr in PUBLIC_CIDRS and is_production_environment(self.environment):
                raise ValueError(f"allowed_cidrs[{i}]: {cidr} admits the whole internet; refused in production")

    def _check_tls(self) -> None:
        if self.tls_mode not in TLS_MODES:
            raise ValueError(f"tls: expected one of {', '.join(TLS_MODES)}")
        if self.tls_mode == "acme" and not self.acme_email:
            raise ValueError("acme_email: required with tls: acme (the ACME account's contact)")

    def _check_notifications(self) -> None:
        url = self.notifications_url
        if url is None:
            if is_production_environment(self.environment):
                raise ValueError("notifications_url: required in production (push/pull events, RG-MON-001)")
            return
        if not isinstance(url, str) or not re.match(r"^https://[^/\s]+(/\S*)?$", url):
            raise ValueError("notifications_url: expected an https:// URL")

    @property
    def publicly_reachable(self) -> bool:
        return any(c in PUBLIC_CIDRS for c in self.allowed_cidrs)

    @property
    def url(self) -> str:
        return f"https://{self.hostname}" + ("" if self.port == 443 else f":{self.port}")

    def opt_outs(self) -> dict[str, str]:
        """The baseline's opt-outs plus this VM's own (outside production only).
        `customer_managed_key` is never one: the VM always creates its own key."""
        found = {
            f"regguard:opt-out:{k}": v for k, v in self.baseline.opt_outs().items() if k != "customer_managed_key"
        }
        if self.publicly_reachable:
            found["regguard:opt-out:allowed_cidrs"] = "public"
        if self.notifications_url is None:
            found["regguard:opt-out:notifications_url"] = "none"
        return found

    def resource_tags(self) -> dict[str, str]:
        tags = regguard_tags(self.environment, self.baseline, self.tags)
        tags.pop("regguard:opt-out:customer_managed_key", None)
        tags.update(self.opt_outs())
        return tags


def check_at_least(value: object, minimum: int, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}: expected an integer of at least {minimum}")


def check_networks(cidrs: tuple[str, ...], key: str) -> None:
    if isinstance(cidrs, str) or not cidrs:
        raise ValueError(f"{key}: expected a non-empty list of networks such as 10.0.0.0/8")
    for i, cidr in enumerate(cidrs):
        try:
            ipaddress.ip_network(cidr, strict=True)
        except (TypeError, ValueError):
            raise ValueError(f"{key}[{i}]: {cidr!r} is not a network such as 10.0.0.0/8") from None


# --------------------------------------------------------------------- rendering (pure)


@dataclass(frozen=True)
class CloudValues:
    """What exists only after the cloud created it: the TLS files (None with
    ACME), one bcrypt hash per identity, the bucket and its key."""

    bucket: str
    kms_key_arn: str | None
    htpasswd_hashes: Mapping[str, str]
    certificate_pem: str | None = None
    private_key_pem: str | None = None
    ca_pem: str | None = None


def registry_config(args: DistributionVmArgs, values: CloudValues) -> RegistryConfig:
    """The registry's config.yml settings for this VM."""
    tls_settings: TlsSettings | AcmeSettings
    if args.tls_mode == "acme":
        tls_settings = AcmeSettings(Path(ACME_CACHE), str(args.acme_email), (args.hostname,))
    else:
        tls_settings = TlsSettings(Path(CERT_PATH), Path(KEY_PATH))
    notifications = (
        (NotificationEndpoint(name="audit-trail", url=args.notifications_url),) if args.notifications_url else ()
    )
    return RegistryConfig(
        storage_root=Path("/var/lib/docker-registry"),
        http_addr=f":{args.port}",
        tls=tls_settings,
        htpasswd=HtpasswdSettings(path=Path(HTPASSWD_PATH), realm=args.hostname),
        notifications=notifications,
        delete_enabled=True,
        s3=S3Storage(bucket=values.bucket, region=args.region, keyid=values.kms_key_arn),
    )


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML and systemd units; values go through `tojson`
    )


def cloud_init_file(path: str, content: str, owner: str = ROOT_OWNER, permissions: str = "0644") -> dict[str, str]:
    return {"path": path, "owner": owner, "permissions": permissions, "content": content}


def cloud_init_files(args: DistributionVmArgs, values: CloudValues) -> list[dict[str, str]]:
    """Every file cloud-init writes: config, htpasswd, TLS files, systemd units."""
    env = templates()
    htpasswd = "".join(f"{identity}:{values.htpasswd_hashes[identity]}\n" for identity in args.identities)
    files = [
        cloud_init_file(CONFIG_PATH, render_registry_config(registry_config(args, values)), REGISTRY_OWNER, "0640"),
        cloud_init_file(HTPASSWD_PATH, htpasswd, REGISTRY_OWNER, "0600"),
    ]
    if args.tls_mode == "internal-ca":
        if not (values.certificate_pem and values.private_key_pem and values.ca_pem):
            raise ValueError("tls: internal-ca needs the certificate, its key and the CA certificate")
        files += [
            cloud_init_file(CERT_PATH, values.certificate_pem + values.ca_pem),  # the chain clients verify
            cloud_init_file(KEY_PATH, values.private_key_pem, REGISTRY_OWNER, "0600"),
            cloud_init_file(CA_PATH, values.ca_pem),
        ]
    systemd = "/etc/systemd/system"
    files += [
        cloud_init_file(f"{systemd}/docker-registry.service.d/regguard.conf",
              env.get_template("docker-registry-override.conf.j2").render()),
        cloud_init_file(f"{systemd}/registry-gc.service",
              env.get_template("registry-gc.service.j2").render(config_path=CONFIG_PATH)),
        cloud_init_file(f"{systemd}/registry-gc.timer",
              env.get_template("registry-gc.timer.j2").render(schedule=args.gc_schedule)),
    ]
    return files


def render_cloud_init(args: DistributionVmArgs, values: CloudValues) -> str:
    """The VM's user data (`#cloud-config`)."""
    commands = [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "registry-gc.timer"],
        ["systemctl", "restart", "docker-registry.service"],
    ]
    return templates().get_template(CLOUD_INIT_TEMPLATE).render(
        files=cloud_init_files(args, values),
        packages=["docker-registry"],
        commands=commands,
        package_mirror=args.package_mirror,
    )


def written_files(cloud_init: str) -> dict[str, str]:
    """path -> content of every `write_files` entry of rendered user data."""
    if not cloud_init.startswith("#cloud-config\n"):
        raise ValueError("not cloud-config user data")
    document = yaml.safe_load(cloud_init)
    return {str(f["path"]): str(f["content"]) for f in document.get("write_files") or []}


# --------------------------------------------------------------------- the component


class DistributionVm(pulumi.ComponentResource):
    """A registry VM on AWS EC2 with its CA, passwords, storage and firewall."""

    instance: aws.ec2.Instance
    security_group: aws.ec2.SecurityGroup
    bucket: aws.s3.Bucket
    kms_key: aws.kms.Key
    ca_certificate: pulumi.Output[str] | None
    passwords: dict[str, pulumi.Output[str]]
    url: str

    def __init__(self, name: str, args: DistributionVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("regguard:distribution:DistributionVm", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = args.resource_tags()
        accounts = {
            identity: random.RandomPassword(f"{name}-{identity}", length=32, special=False, opts=child)
            for identity in args.identities
        }
        pki = InternalCa(name, args.hostname, child) if args.tls_mode == "internal-ca" else None
        self.kms_key = vm_key(name, f"{name} registry storage and root volume", tags, child)
        self.bucket = _AwsStorage.declare(name, self.kms_key, tags, child)
        profile = _AwsStorage.instance_profile(name, self.bucket, self.kms_key, tags, child)
        self.security_group = aws_security_group(
            name,
            f"regguard: {args.hostname} registry, port {args.port} from allowed networks only",
            args.placement.vpc_id,
            args.port,
            (args.allowed_cidrs, args.egress_cidrs),
            tags,
            child,
        )
        self.instance = aws_instance(
            name,
            args.placement,
            (self.security_group, profile, self.kms_key),
            _user_data(args, self.bucket.bucket, self.kms_key.arn, accounts, pki),
            {**tags, "Name": args.hostname},
            child,
        )
        self.ca_certificate = pki.ca.cert_pem if pki is not None else None
        self.passwords = {identity: pulumi.Output.secret(p.result) for identity, p in accounts.items()}
        self.url = args.url
        self.register_outputs(
            {"url": self.url, "instance_id": self.instance.id, "ca_certificate": self.ca_certificate}
        )


class InternalCa:
    """A CA and the server certificate it signs (pulumi-tls, ECDSA P-256)."""

    def __init__(self, name: str, hostname: str, child: pulumi.ResourceOptions) -> None:
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        self.ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{hostname} internal CA", organization="regguard"),
            allowed_uses=["cert_signing", "crl_signing"],
            validity_period_hours=CA_VALIDITY_HOURS,
            opts=child,
        )
        self.key = tls.PrivateKey(f"{name}-tls-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        request = tls.CertRequest(
            f"{name}-csr",
            private_key_pem=self.key.private_key_pem,
            dns_names=[hostname],
            subject=tls.CertRequestSubjectArgs(common_name=hostname, organization="regguard"),
            opts=child,
        )
        self.cert = tls.LocallySignedCert(
            f"{name}-tls",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=self.ca.cert_pem,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            validity_period_hours=CERT_VALIDITY_HOURS,
            early_renewal_hours=CERT_EARLY_RENEWAL_HOURS,
            opts=child,
        )


def _user_data(
    args: DistributionVmArgs,
    bucket: pulumi.Output[str],
    key_arn: pulumi.Output[str],
    accounts: Mapping[str, random.RandomPassword],
    pki: InternalCa | None,
) -> pulumi.Output[str]:
    """The rendered cloud-init, a secret (it holds the TLS key)."""
    identities = list(accounts)
    tls_parts: list[Any] = [pki.cert.cert_pem, pki.key.private_key_pem, pki.ca.cert_pem] if pki else [None] * 3

    def render(values: list[Any]) -> str:
        bucket_name, key, cert, private_key, ca, *hashes = values
        return render_cloud_init(
            args,
            CloudValues(bucket_name, key, dict(zip(identities, hashes, strict=True)), cert, private_key, ca),
        )

    parts = [bucket, key_arn, *tls_parts, *(accounts[i].bcrypt_hash for i in identities)]
    return pulumi.Output.secret(pulumi.Output.all(*parts).apply(render))


class _AwsStorage:
    """The registry's S3 bucket (SSE-KMS, public access blocked, versioned) and
    the instance role that may use it and nothing else."""

    @staticmethod
    def declare(name: str, key: aws.kms.Key, tags: Mapping[str, str], child: pulumi.ResourceOptions) -> aws.s3.Bucket:
        bucket = aws.s3.Bucket(f"{name}-storage", force_destroy=False, tags=dict(tags), opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-storage-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-storage-private",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-storage-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        return bucket

    @staticmethod
    def instance_profile(
        name: str, bucket: aws.s3.Bucket, key: aws.kms.Key, tags: Mapping[str, str], child: pulumi.ResourceOptions
    ) -> aws.iam.InstanceProfile:
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                }
            ),
            tags=dict(tags),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-storage-access",
            role=role.id,
            policy=pulumi.Output.all(bucket.arn, key.arn).apply(lambda a: storage_policy_document(a[0], a[1])),
            opts=child,
        )
        return aws.iam.InstanceProfile(f"{name}-profile", role=role.name, tags=dict(tags), opts=child)


def storage_policy_document(bucket_arn: str, key_arn: str) -> str:
    """What Distribution's S3 driver needs on its own bucket and key, nothing more."""
    statements = [
        {"Sid": "RegistryBucket", "Effect": "Allow", "Resource": bucket_arn,
         "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]},
        {"Sid": "RegistryObjects", "Effect": "Allow", "Resource": f"{bucket_arn}/*",
         "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject",
                    "s3:ListMultipartUploadParts", "s3:PutObject"]},
        {"Sid": "RegistryKey", "Effect": "Allow", "Resource": key_arn,
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"]},
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def by_ip_version(cidrs: Sequence[str]) -> tuple[list[str], list[str]]:
    v4 = [c for c in cidrs if ipaddress.ip_network(c).version == 4]
    return v4, [c for c in cidrs if c not in v4]


def aws_security_group(
    name: str,
    description: str,
    vpc_id: str,
    port: int,
    network: tuple[tuple[str, ...], tuple[str, ...]],
    tags: Mapping[str, str],
    child: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """Ingress: `port` from the allowed networks only. Egress: HTTPS to the
    egress networks (object storage, the events endpoint, package mirrors).
    `network` is (allowed CIDRs, egress CIDRs)."""
    allowed, egress = network
    v4, v6 = by_ip_version(allowed)
    out_v4, out_v6 = by_ip_version(egress)
    return aws.ec2.SecurityGroup(
        f"{name}-sg",
        description=description,
        vpc_id=vpc_id,
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp", from_port=port, to_port=port, cidr_blocks=v4, ipv6_cidr_blocks=v6,
                description="registry API (HTTPS)",
            )
        ],
        egress=[
            aws.ec2.SecurityGroupEgressArgs(
                protocol="tcp", from_port=443, to_port=443, cidr_blocks=out_v4, ipv6_cidr_blocks=out_v6,
                description="HTTPS out",
            )
        ],
        tags=dict(tags),
        opts=child,
    )


def aws_instance(
    name: str,
    placement: AwsVmPlacement,
    hardening: tuple[aws.ec2.SecurityGroup, aws.iam.InstanceProfile | None, aws.kms.Key],
    user_data: pulumi.Output[str],
    tags: Mapping[str, str],
    child: pulumi.ResourceOptions,
) -> aws.ec2.Instance:
    """The VM: no public IP, IMDSv2 only (a token per request, one hop), root
    volume encrypted with the component's key, user data replaced on change.
    `hardening` is (security group, instance profile or None, KMS key)."""
    group, profile, key = hardening
    return aws.ec2.Instance(
        f"{name}-vm",
        ami=placement.ami_id,
        instance_type=placement.instance_type,
        subnet_id=placement.subnet_id,
        availability_zone=placement.availability_zone,
        vpc_security_group_ids=[group.id],
        associate_public_ip_address=False,
        iam_instance_profile=profile.name if profile is not None else None,
        metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
            http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
        ),
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
            encrypted=True, kms_key_id=key.arn, volume_size=placement.root_volume_gb, volume_type="gp3"
        ),
        user_data=user_data,
        user_data_replace_on_change=True,
        tags=dict(tags),
        opts=child,
    )


def vm_key(name: str, purpose: str, tags: Mapping[str, str], child: pulumi.ResourceOptions) -> aws.kms.Key:
    """A customer KMS key with yearly rotation for the VM's disks and storage."""
    return aws.kms.Key(
        f"{name}-key",
        description=f"regguard: {purpose}",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        tags=dict(tags),
        opts=child,
    )


# --------------------------------------------------------------------- stack config (the kind table's provisioner)

_ENTRY_KEYS = frozenset(
    {
        "name", "kind", "cloud", "hostname", "baseline", "placement", "identities", "auditor", "allowed_cidrs",
        "notifications_url", "tls", "acme_email", "port", "gc_schedule", "tags", "package_mirror", "egress_cidrs",
    }
)
PLACEMENT_KEYS = frozenset({"vpc_id", "subnet_id", "ami_id", "instance_type", "root_volume_gb", "availability_zone"})


def env_prefix(name: str) -> str:
    """`edge-1` -> `REGGUARD_EDGE_1`: where the audit finds this registry's auditor credentials."""
    return "REGGUARD_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


@dataclass(frozen=True)
class DistributionVmSpec:
    """One `kind: distribution` entry of `regguard:registries`."""

    name: str
    args: DistributionVmArgs

    def declare(self) -> dict[str, Any]:
        """The VM; exports its CA certificate and (secret) passwords; returns its URL by name."""
        vm = DistributionVm(self.name, self.args)
        if vm.ca_certificate is not None:
            pulumi.export(f"{self.name}-ca-certificate", vm.ca_certificate)
        pulumi.export(f"{self.name}-passwords", pulumi.Output.secret(vm.passwords))
        return {self.name: vm.url}

    def audit_targets(self) -> list[dict[str, Any]]:
        prefix = env_prefix(self.name)
        target: dict[str, Any] = {
            "name": self.name,
            "kind": "distribution",
            "url": self.args.url,
            "username_env": f"{prefix}_USER",
            "password_env": f"{prefix}_PASSWORD",
        }
        if self.args.tls_mode == "internal-ca":
            target["ca_file"] = f"{self.name}-ca.pem"  # `pulumi stack output <name>-ca-certificate > <name>-ca.pem`
        return [target]


def parse_placement(raw: Any, where: str) -> AwsVmPlacement:
    """`<where>.placement` -> AwsVmPlacement; a bad value names its key."""
    entry = sc.mapping(raw, f"{where}.placement", PLACEMENT_KEYS)
    return sc.build(f"{where}.placement", lambda: AwsVmPlacement(**entry))


def parse_registry(
    raw: Any, stack: StackContext, where: str, earlier: Sequence[Any] = ()
) -> DistributionVmSpec:
    """A `kind: distribution` entry -> its spec; a bad value names its key."""
    entry = sc.mapping(raw, where, _ENTRY_KEYS)
    name = sc.require_str(entry.get("name"), f"{where}.name")
    if not re.match(sc.TARGET_NAME_PATTERN, name):
        raise StackConfigError(f"{where}.name: letters, digits, '.', '_' and '-' only")
    cloud = entry.get("cloud", "aws")
    if cloud != "aws":
        raise StackConfigError(f"{where}.cloud: {cloud!r} is not supported yet; expected aws")
    overrides = sc.mapping(entry.get("baseline", {}), f"{where}.baseline", None)
    baseline = sc.baseline_for(stack.environment, overrides, f"{where}.baseline")
    placement = parse_placement(entry.get("placement"), where)
    optional = {key: entry[key] for key in ("auditor", "notifications_url", "acme_email", "port", "gc_schedule",
                                            "package_mirror") if key in entry}
    if "egress_cidrs" in entry:
        optional["egress_cidrs"] = sc.str_list(entry["egress_cidrs"], f"{where}.egress_cidrs", default=())
    if "tls" in entry:
        optional["tls_mode"] = entry["tls"]
    return DistributionVmSpec(
        name,
        sc.build(
            where,
            lambda: DistributionVmArgs(
                hostname=sc.require_str(entry.get("hostname"), f"{where}.hostname"),
                environment=stack.environment,
                baseline=baseline,
                region=stack.provider_value("aws:region"),
                placement=placement,
                identities=sc.str_list(entry.get("identities"), f"{where}.identities", default=()),
                allowed_cidrs=sc.str_list(entry.get("allowed_cidrs"), f"{where}.allowed_cidrs", default=()),
                tags=sc.tags_mapping(entry.get("tags"), f"{where}.tags"),
                **optional,
            ),
        ),
    )
