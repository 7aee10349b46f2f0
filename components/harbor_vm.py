"""A self-hosted Harbor on a VM, installed from the offline installer.

`HarborVm` declares a VM whose cloud-init (the shared `cloud-init.yml.j2`)
mounts an encrypted data volume, downloads Harbor's offline installer from
`installer_url` (the GitHub release by default, an internal mirror for
air-gapped sites; checked against `installer_sha256` when given), writes
`harbor.yml` rendered with Jinja2 (`components/templates/harbor.yml.j2`) and
runs `install.sh --with-trivy`.

What every Harbor VM gets:

* HTTPS with a certificate from an internal CA (pulumi-tls); the security
  group admits only port 443 from the configured CIDRs, never 0.0.0.0/0 in
  production (RG-NET-001); port 80 only redirects and is not reachable.
* A generated admin password and database password (pulumi-random), never the
  installer's `Harbor12345` / `root123`; Trivy enabled (offline for air-gapped
  sites); an encrypted data volume; optionally an external PostgreSQL.
* IMDSv2 only, no public IP, the root volume encrypted with the VM's key.

The network, instance, key and CA helpers are the Distribution VM's
(`components.distribution_vm`), so both VMs follow the same rules.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import yaml

from audits.vocabulary import is_production_environment
from components.distribution_vm import (
    CLOUD_INIT_TEMPLATE,
    HOSTNAME_RE,
    PUBLIC_CIDRS,
    ROOT_OWNER,
    AwsVmPlacement,
    InternalCa,
    aws_instance,
    aws_security_group,
    check_at_least,
    check_networks,
    cloud_init_file,
    templates,
    vm_key,
    written_files,
)

HARBOR_VERSION = "2.15.0"
DEFAULT_INSTALLER_URL = (
    f"https://github.com/goharbor/harbor/releases/download/v{HARBOR_VERSION}/"
    f"harbor-offline-installer-v{HARBOR_VERSION}.tgz"
)
INSTALLER_DEFAULT_PASSWORDS = frozenset({"Harbor12345", "root123"})
HARBOR_YML_PATH = "/etc/harbor/harbor.yml"
CERT_PATH = "/etc/harbor/tls/harbor.crt"
KEY_PATH = "/etc/harbor/tls/harbor.key"
CA_PATH = "/etc/harbor/tls/ca.crt"
INSTALL_SCRIPT = "/usr/local/sbin/regguard-install-harbor"
DATA_VOLUME = "/data"
DATA_DEVICE_NAME = "/dev/sdf"
_URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~%/+-]*)?$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_SSL_MODES = ("require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class ExternalDatabase:
    """An external PostgreSQL for Harbor's core database; its password is generated
    by the component (create the role with it: the `<name>-database-password` output)."""

    host: str
    port: int = 5432
    db_name: str = "registry"
    username: str = "harbor"
    ssl_mode: str = "verify-full"

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not re.match(r"^[A-Za-z0-9.-]+$", self.host):
            raise ValueError("external_database.host: expected a host name")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError("external_database.port: expected a TCP port number")
        if self.ssl_mode not in _SSL_MODES:
            raise ValueError(f"external_database.ssl_mode: expected one of {', '.join(_SSL_MODES)} (never disable)")


@dataclass(frozen=True)
class HarborVmArgs:
    """One Harbor VM; `allowed_cidrs` are the only networks that reach port 443."""

    hostname: str
    environment: str
    placement: AwsVmPlacement
    allowed_cidrs: tuple[str, ...]
    egress_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    installer_url: str = DEFAULT_INSTALLER_URL
    installer_sha256: str | None = None
    version: str = HARBOR_VERSION
    data_volume_gb: int = 200
    external_database: ExternalDatabase | None = None
    trivy_offline: bool = False
    package_mirror: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.hostname, str) or not HOSTNAME_RE.match(self.hostname):
            raise ValueError(f"hostname: {self.hostname!r} is not a DNS name such as harbor.internal.example")
        if self.placement.availability_zone is None:
            raise ValueError("placement.availability_zone: required (the data volume is created in it)")
        check_networks(self.allowed_cidrs, "allowed_cidrs")
        check_networks(self.egress_cidrs, "egress_cidrs")
        for i, cidr in enumerate(self.allowed_cidrs):
            if cidr in PUBLIC_CIDRS and is_production_environment(self.environment):
                raise ValueError(f"allowed_cidrs[{i}]: {cidr} admits the whole internet; refused in production")
        for key in ("installer_url", "package_mirror"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not _URL_RE.match(value)):
                raise ValueError(f"{key}: expected a plain http(s) URL")
        if self.installer_sha256 is not None and not _SHA256_RE.match(str(self.installer_sha256)):
            raise ValueError("installer_sha256: expected 64 lowercase hex digits")
        if not re.match(r"^\d+\.\d+\.\d+$", str(self.version)):
            raise ValueError("version: expected a Harbor release such as 2.15.0")
        check_at_least(self.data_volume_gb, 20, "data_volume_gb")
        for key in self.tags:
            if key.startswith("regguard:"):
                raise ValueError(f"tags: {key!r}: the regguard: prefix is reserved")

    @property
    def url(self) -> str:
        return f"https://{self.hostname}"

    def resource_tags(self) -> dict[str, str]:
        tags = {**self.tags, "regguard:managed": "true", "regguard:environment": self.environment}
        if any(c in PUBLIC_CIDRS for c in self.allowed_cidrs):
            tags["regguard:opt-out:allowed_cidrs"] = "public"
        return tags


# --------------------------------------------------------------------- rendering (pure)


@dataclass(frozen=True)
class HarborSecrets:
    """What exists only after apply: passwords, TLS files, the data volume's id."""

    admin_password: str
    database_password: str
    certificate_pem: str
    private_key_pem: str
    ca_pem: str
    data_volume_id: str

    def __post_init__(self) -> None:
        if {self.admin_password, self.database_password} & INSTALLER_DEFAULT_PASSWORDS:
            raise ValueError("a Harbor password is the installer default")


def render_harbor_yml(args: HarborVmArgs, values: HarborSecrets) -> str:
    """harbor.yml for this VM."""
    database = None
    if args.external_database is not None:
        db = args.external_database
        database = {"host": db.host, "port": db.port, "db_name": db.db_name, "username": db.username,
                    "ssl_mode": db.ssl_mode}
    return templates().get_template("harbor.yml.j2").render(
        hostname=args.hostname,
        version=args.version,
        certificate=CERT_PATH,
        private_key=KEY_PATH,
        data_volume=DATA_VOLUME,
        admin_password=values.admin_password,
        database_password=values.database_password,
        external_database=database,
        trivy_offline=args.trivy_offline,
    )


def _install_script(args: HarborVmArgs, values: HarborSecrets) -> str:
    # EBS volumes appear as NVMe devices named after the volume id on Nitro instances.
    device = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + values.data_volume_id.replace("-", "")
    return templates().get_template("harbor-install.sh.j2").render(
        version=args.version,
        data_device=shlex.quote(device),
        data_volume=shlex.quote(DATA_VOLUME),
        data_volume_fstab=DATA_VOLUME,
        installer_url=shlex.quote(args.installer_url),
        installer_sha256=None if args.installer_sha256 is None else shlex.quote(args.installer_sha256),
    )


def render_cloud_init(args: HarborVmArgs, values: HarborSecrets) -> str:
    """The Harbor VM's user data (`#cloud-config`)."""
    files = [
        cloud_init_file(HARBOR_YML_PATH, render_harbor_yml(args, values), permissions="0600"),
        cloud_init_file(CERT_PATH, values.certificate_pem + values.ca_pem),
        cloud_init_file(KEY_PATH, values.private_key_pem, ROOT_OWNER, "0600"),
        cloud_init_file(CA_PATH, values.ca_pem),
        cloud_init_file(INSTALL_SCRIPT, _install_script(args, values), permissions="0700"),
    ]
    return templates().get_template(CLOUD_INIT_TEMPLATE).render(
        files=files,
        packages=["docker.io", "docker-compose", "curl"],
        commands=[["systemctl", "enable", "--now", "docker"], [INSTALL_SCRIPT]],
        package_mirror=args.package_mirror,
    )


def harbor_yml_of(cloud_init: str) -> dict[str, Any]:
    """The harbor.yml a rendered user data writes, parsed."""
    loaded = yaml.safe_load(written_files(cloud_init)[HARBOR_YML_PATH])
    if not isinstance(loaded, dict):
        raise ValueError("harbor.yml is not a mapping")
    return loaded


# --------------------------------------------------------------------- the component


class HarborVm(pulumi.ComponentResource):
    """A Harbor VM on AWS EC2 with its CA, passwords, data volume and firewall."""

    instance: aws.ec2.Instance
    security_group: aws.ec2.SecurityGroup
    data_volume: aws.ebs.Volume
    admin_password: pulumi.Output[str]
    database_password: pulumi.Output[str]
    ca_certificate: pulumi.Output[str]
    url: str

    def __init__(self, name: str, args: HarborVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("regguard:harbor:HarborVm", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = args.resource_tags()
        admin = random.RandomPassword(f"{name}-admin", length=32, special=False, opts=child)
        database = random.RandomPassword(f"{name}-database", length=32, special=False, opts=child)
        pki = InternalCa(name, args.hostname, child)
        key = vm_key(name, f"{name} Harbor data and root volumes", tags, child)
        self.data_volume = aws.ebs.Volume(
            f"{name}-data",
            availability_zone=str(args.placement.availability_zone),
            size=args.data_volume_gb,
            type="gp3",
            encrypted=True,
            kms_key_id=key.arn,
            tags=dict(tags),
            opts=child,
        )
        self.security_group = aws_security_group(
            name,
            f"regguard: {args.hostname} Harbor, HTTPS from allowed networks only",
            args.placement.vpc_id,
            443,
            (args.allowed_cidrs, args.egress_cidrs),
            tags,
            child,
        )
        parts = [admin.result, database.result, pki.cert.cert_pem, pki.key.private_key_pem, pki.ca.cert_pem,
                 self.data_volume.id]
        user_data = pulumi.Output.secret(
            pulumi.Output.all(*parts).apply(lambda v: render_cloud_init(args, HarborSecrets(*v)))
        )
        self.instance = aws_instance(
            name, args.placement, (self.security_group, None, key), user_data, {**tags, "Name": args.hostname}, child
        )
        aws.ec2.VolumeAttachment(
            f"{name}-data-attachment",
            device_name=DATA_DEVICE_NAME,
            volume_id=self.data_volume.id,
            instance_id=self.instance.id,
            opts=child,
        )
        self.admin_password = pulumi.Output.secret(admin.result)
        self.database_password = pulumi.Output.secret(database.result)
        self.ca_certificate = pki.ca.cert_pem
        self.url = args.url
        self.register_outputs({"url": self.url, "instance_id": self.instance.id, "ca_certificate": pki.ca.cert_pem})


# --------------------------------------------------------------------- stack config (the kind table's provisioner)

_ENTRY_KEYS = frozenset(
    {
        "name", "kind", "cloud", "hostname", "placement", "allowed_cidrs", "egress_cidrs", "installer_url",
        "installer_sha256", "version", "data_volume_gb", "external_database", "trivy_offline", "package_mirror",
        "tags", "system", "projects",
    }
)
_VM_KEYS = ("installer_url", "installer_sha256", "version", "data_volume_gb", "trivy_offline", "package_mirror")
_DATABASE_KEYS = frozenset({"host", "port", "db_name", "username", "ssl_mode"})


@dataclass(frozen=True)
class HarborSpec:
    """One `kind: harbor` entry: the VM, its system settings and its projects.
    `secret_config` maps a ConfigAuth secret input to the `regguard:` config key holding it."""

    name: str
    vm: HarborVmArgs
    system: Any  # components.harbor_project.HarborSystemArgs
    projects: tuple[Any, ...]  # components.harbor_project.HarborProjectArgs
    secret_config: Mapping[str, str] = field(default_factory=dict)

    def declare(self) -> dict[str, Any]:
        """The VM, then the system settings and projects through the default Harbor provider
        (`harbor:url`/`harbor:username`/`harbor:password`); exports the admin password and CA."""
        from components.harbor_project import HarborProject, HarborSystem, HarborSystemArgs
        from components.stack_config import NAMESPACE

        vm = HarborVm(self.name, self.vm)
        pulumi.export(f"{self.name}-ca-certificate", vm.ca_certificate)
        pulumi.export(f"{self.name}-admin-password", vm.admin_password)
        pulumi.export(f"{self.name}-database-password", vm.database_password)
        config = pulumi.Config(NAMESPACE)
        secrets = {key: config.require_secret(config_key) for key, config_key in self.secret_config.items()}
        system = HarborSystemArgs(**{**vars(self.system), "auth_settings": {**self.system.auth_settings, **secrets}})
        HarborSystem(self.name, system)
        for project in self.projects:
            HarborProject(f"{self.name}-{project.name}", project)
        return {self.name: vm.url}

    def audit_targets(self) -> list[dict[str, Any]]:
        from components.distribution_vm import env_prefix

        prefix = env_prefix(self.name)
        return [
            {
                "name": self.name,
                "kind": "harbor",
                "url": self.vm.url,
                "username_env": f"{prefix}_USER",
                "password_env": f"{prefix}_PASSWORD",
                "ca_file": f"{self.name}-ca.pem",
                "projects": [p.name for p in self.projects],
            }
        ]


def parse_registry(raw: Any, stack: Any, where: str, earlier: Any = ()) -> HarborSpec:
    """A `kind: harbor` entry -> its spec; a bad value names its key."""
    from components import stack_config as sc
    from components.distribution_vm import parse_placement

    entry = sc.mapping(raw, where, _ENTRY_KEYS)
    name = sc.require_str(entry.get("name"), f"{where}.name")
    if not re.match(sc.TARGET_NAME_PATTERN, name):
        raise sc.StackConfigError(f"{where}.name: letters, digits, '.', '_' and '-' only")
    if entry.get("cloud", "aws") != "aws":
        raise sc.StackConfigError(f"{where}.cloud: {entry.get('cloud')!r} is not supported yet; expected aws")
    optional: dict[str, Any] = {key: entry[key] for key in _VM_KEYS if key in entry}
    if "egress_cidrs" in entry:
        optional["egress_cidrs"] = sc.str_list(entry["egress_cidrs"], f"{where}.egress_cidrs", default=())
    if entry.get("external_database") is not None:
        db = sc.mapping(entry["external_database"], f"{where}.external_database", _DATABASE_KEYS)
        optional["external_database"] = sc.build(where, lambda: ExternalDatabase(**db))
    placement = parse_placement(entry.get("placement"), where)
    vm = sc.build(
        where,
        lambda: HarborVmArgs(
            hostname=sc.require_str(entry.get("hostname"), f"{where}.hostname"),
            environment=stack.environment,
            placement=placement,
            allowed_cidrs=sc.str_list(entry.get("allowed_cidrs"), f"{where}.allowed_cidrs", default=()),
            tags=sc.tags_mapping(entry.get("tags"), f"{where}.tags"),
            **optional,
        ),
    )
    from components.harbor_project import parse_projects, parse_system

    system, secret_config = parse_system(entry.get("system"), stack.environment, f"{where}.system")
    projects = parse_projects(entry.get("projects"), stack.environment, f"{where}.projects")
    return HarborSpec(name, vm, system, projects, secret_config)
