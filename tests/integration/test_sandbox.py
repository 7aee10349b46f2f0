"""The sandbox against the real binaries: docker-registry 2.8 and skopeo.

What must hold for the demo and every other integration test to mean anything:
registries really serve TLS verified by the sandbox CA and really demand Basic
auth; skopeo pushes land with the digest that was built; signatures verify with
the public key a user would configure; nothing is left running afterwards, also
when the estate outlives the process that started it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from audits.config import parse_config
from sandbox.estate import Estate, start_estate
from sandbox.images import (
    SkopeoError,
    build_image,
    build_index,
    push_with_skopeo,
    seed_plan,
    write_layout,
)
from sandbox.oci import MEDIA_CONFIG, MEDIA_INDEX, MEDIA_MANIFEST
from sandbox.process import is_alive
from sandbox.pusher import OciPusher, PushError
from sandbox.registry import RegistrySpec, RunningRegistry
from sandbox.registry_config import TEMPLATE_DIR, TEMPLATE_NAME
from sandbox.signing import (
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    generate_key_pair,
    sign_image,
    simple_signing_payload,
)
from sandbox.state import SECRETS_FILE, STATE_FILE, load_secrets, sandbox_down, sandbox_status

pytestmark = pytest.mark.integration

RegistryFactory = Callable[[RegistrySpec], RunningRegistry]
ACCEPT = ", ".join([MEDIA_MANIFEST, MEDIA_INDEX])
REPO_ROOT = Path(__file__).resolve().parents[2]


def client(reg: RunningRegistry, **kwargs: Any) -> httpx.Client:
    """An httpx client that trusts only the sandbox CA and logs in as the registry's user."""
    verify: ssl.SSLContext | bool = True
    if reg.ca_file is not None:
        verify = ssl.create_default_context(cafile=str(reg.ca_file))
    auth = (reg.username, reg.password) if reg.username and reg.password else None
    return httpx.Client(base_url=reg.url, verify=verify, auth=auth, timeout=10, **kwargs)


def registry_pids_under(root: Path) -> list[int]:
    """docker-registry processes (not zombies) serving a config under `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"docker-registry") and str(root).encode() in b" ".join(
            cmdline
        ):
            pid = int(entry.name)
            if is_alive(pid):
                found.append(pid)
    return found


# ---- one registry -----------------------------------------------------------


def test_tls_registry_verifies_with_sandbox_ca_and_demands_basic_auth(
    registry_factory: RegistryFactory,
) -> None:
    reg = registry_factory(RegistrySpec("secure", users={"alice": "pw-1"}, bcrypt_rounds=4))
    assert reg.url == f"https://127.0.0.1:{reg.port}"
    anonymous = httpx.get(
        f"{reg.url}/v2/", verify=ssl.create_default_context(cafile=str(reg.ca_file))
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="regguard-secure"'
    with client(reg) as c:
        assert c.get("/v2/").status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{reg.url}/v2/")  # the system trust store does not know the sandbox CA


def test_tls_below_1_2_is_refused(registry_factory: RegistryFactory) -> None:
    reg = registry_factory(RegistrySpec("modern"))
    old = ssl.create_default_context(cafile=str(reg.ca_file))
    with warnings.catch_warnings():  # the deprecation is the point of the test
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{reg.url}/v2/", verify=old)
    modern = ssl.create_default_context(cafile=str(reg.ca_file))
    assert httpx.get(f"{reg.url}/v2/", verify=modern).status_code == 200


@pytest.mark.parametrize(
    ("cert", "reason"),
    [("expired", "certificate has expired"), ("self-signed", "self-signed certificate")],
)
def test_faulty_certificates_fail_verification(
    registry_factory: RegistryFactory, cert: Any, reason: str
) -> None:
    reg = registry_factory(RegistrySpec(f"bad-{cert}", cert=cert))
    with pytest.raises(httpx.ConnectError, match=reason):
        httpx.get(f"{reg.url}/v2/", verify=ssl.create_default_context(cafile=str(reg.ca_file)))
    assert httpx.get(f"{reg.url}/v2/", verify=False).status_code == 200  # it does serve


def test_plain_http_registry_without_auth(registry_factory: RegistryFactory) -> None:
    reg = registry_factory(RegistrySpec("open", tls=False))
    assert reg.url.startswith("http://") and reg.ca_file is None
    assert httpx.get(f"{reg.url}/v2/").status_code == 200
    assert reg.targets == [
        {"name": "open", "kind": "distribution", "url": reg.url, "config_file": str(reg.config_file)}
    ]
    assert reg.env == {}


def test_rendered_config_is_production_shaped(registry_factory: RegistryFactory) -> None:
    reg = registry_factory(
        RegistrySpec("shaped", users={"u": "p"}, notifications_url="http://127.0.0.1:9/events",
                     bcrypt_rounds=4)
    )
    config = yaml.safe_load(reg.config_file.read_text())
    assert config["version"] == 0.1
    assert config["storage"]["filesystem"]["rootdirectory"] == str(reg.data_dir)
    assert config["storage"]["delete"] == {"enabled": True}
    assert config["http"]["addr"] == f"127.0.0.1:{reg.port}"
    assert config["http"]["tls"]["minimumtls"] == "tls1.2"
    assert config["auth"]["htpasswd"]["path"] == str(reg.config_file.parent / "htpasswd")
    assert config["notifications"]["endpoints"][0]["url"] == "http://127.0.0.1:9/events"
    assert config["health"]["storagedriver"]["enabled"] is True
    htpasswd = (reg.config_file.parent / "htpasswd").read_text()
    assert htpasswd.startswith("u:$2b$04$") and "p\n" not in htpasswd
    assert (reg.config_file.parent / "htpasswd").stat().st_mode & 0o077 == 0


def test_template_refuses_missing_variables() -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR), undefined=jinja2.StrictUndefined
    )
    with pytest.raises(jinja2.UndefinedError):
        env.get_template(TEMPLATE_NAME).render(log_level="info")


def test_registry_stop_is_idempotent_and_leaves_no_process(tmp_path: Path) -> None:
    from sandbox.registry import start_registry

    with start_registry(RegistrySpec("short", tls=False), tmp_path) as reg:
        assert reg.alive()
    assert not reg.alive() and not Path(f"/proc/{reg.pid}").exists()
    reg.stop()


# ---- pushing ----------------------------------------------------------------


def test_skopeo_push_then_head_returns_the_same_digest(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    reg = registry_factory(RegistrySpec("push", users={"ci": "pw-2"}, bcrypt_rounds=4))
    image, index = build_image("one"), build_index("multi")
    layout = write_layout(tmp_path / "layout", {"one": image, "multi": index})
    assert push_with_skopeo(layout, reg, "app/one", "v1.0.0", ref="one") == image.digest
    assert push_with_skopeo(layout, reg, "app/multi", "v2.0.0", ref="multi") == index.digest
    with client(reg, headers={"Accept": ACCEPT}) as c:
        head = c.head("/v2/app/one/manifests/v1.0.0")
        assert head.status_code == 200
        assert head.headers["docker-content-digest"] == image.digest
        head = c.head("/v2/app/multi/manifests/v2.0.0")
        assert head.headers["docker-content-digest"] == index.digest
        assert head.headers["content-type"] == MEDIA_INDEX
        for child in index.children:  # every platform manifest arrived too
            assert c.head(f"/v2/app/multi/manifests/{child.digest}").status_code == 200


def test_skopeo_failure_never_reveals_the_password(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    reg = registry_factory(RegistrySpec("guarded", users={"ci": "right-pw"}, bcrypt_rounds=4))
    layout = write_layout(tmp_path / "layout", {"x": build_image("x")})
    wrong = dataclasses.replace(reg, password="wrong-canary-7f3a")
    with pytest.raises(SkopeoError) as err:
        push_with_skopeo(layout, wrong, "app/x", "v1.0.0", ref="x")
    assert "wrong-canary-7f3a" not in str(err.value)
    assert "127.0.0.1" in str(err.value)


def test_oci_pusher_seeds_20_repos_x_5_tags_quickly(registry_factory: RegistryFactory) -> None:
    reg = registry_factory(RegistrySpec("bulk", users={"seed": "pw-3"}, bcrypt_rounds=4))
    repos = [f"bench/svc-{i:02d}" for i in range(20)]
    tags = [f"v1.{j}.0" for j in range(5)]
    items = seed_plan(repos, tags)
    pusher = OciPusher.for_registry(reg, concurrency=8)
    started = time.monotonic()
    digests = pusher.push_many_sync(items)
    assert time.monotonic() - started < 30  # ~2 s on an idle 2-core machine
    assert len(set(digests)) == 100 and digests == [m.digest for _, _, m in items]
    # the shared base layer is sent once and mounted elsewhere; per-repo blobs once each
    assert pusher.uploads == 1 + 20 * 2
    with client(reg) as c:
        catalog = c.get("/v2/_catalog", params={"n": 100}).json()["repositories"]
        assert sorted(catalog) == repos
        assert sorted(c.get(f"/v2/{repos[7]}/tags/list").json()["tags"]) == tags
    again = OciPusher.for_registry(reg, concurrency=8)
    again.push_many_sync(items[:10])
    assert again.uploads == 0  # HEAD finds every blob


def test_oci_pusher_errors_name_the_request_not_the_credentials(
    registry_factory: RegistryFactory,
) -> None:
    reg = registry_factory(RegistrySpec("locked", users={"seed": "pw-4"}, bcrypt_rounds=4))
    pusher = OciPusher(reg.url, username="seed", password="bad-canary-91", ca_file=reg.ca_file)
    with pytest.raises(PushError) as err:
        pusher.push_many_sync([("app/x", "v1", build_image("x"))])
    assert "401" in str(err.value) and "bad-canary-91" not in str(err.value)


def test_sign_image_pushes_a_verifiable_cosign_signature(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    reg = registry_factory(RegistrySpec("sign", users={"ci": "pw-5"}, bcrypt_rounds=4))
    keys = generate_key_pair(tmp_path / "keys")
    digest = OciPusher.for_registry(reg).push_many_sync([("app/api", "v1.0.0", build_image("s"))])[0]
    tag = sign_image(reg, "app/api", digest, keys.private_key)
    assert tag == "sha256-" + digest.removeprefix("sha256:") + ".sig"
    with client(reg) as c:
        assert_signature_verifies(c, "app/api", digest, f"{reg.address}/app/api", keys.public_key)


def test_simple_signing_payload_matches_cosign_byte_for_byte() -> None:
    digest = "sha256:" + "ab" * 32
    assert simple_signing_payload("127.0.0.1:5000/app/api", digest) == (
        b'{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app/api"},'
        b'"image":{"docker-manifest-digest":"sha256:' + b"ab" * 32 + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    with pytest.raises(ValueError):
        simple_signing_payload("r/a", "md5:00")


def assert_signature_verifies(
    c: httpx.Client, repo: str, digest: str, reference: str, public_key: Path
) -> None:
    """Fetch `sha256-<hex>.sig` the way a verifier does and check it with `cryptography`."""
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    resp = c.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": MEDIA_MANIFEST})
    assert resp.status_code == 200, resp.text
    manifest = resp.json()
    assert manifest["config"]["mediaType"] == MEDIA_CONFIG
    [layer] = manifest["layers"]
    assert layer["mediaType"] == SIMPLESIGNING_MEDIA_TYPE
    payload = c.get(f"/v2/{repo}/blobs/{layer['digest']}", follow_redirects=True).content
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == digest
    assert payload == simple_signing_payload(reference, digest)
    key = serialization.load_pem_public_key(public_key.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])
    key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.verify(signature, payload + b" ", ec.ECDSA(hashes.SHA256()))


# ---- the estate -------------------------------------------------------------


def test_estate_hardened_holds_signed_release_tags(estate: Estate) -> None:
    reg = estate.registries["hardened"]
    pushed = estate.pushed["hardened"]
    assert set(pushed) == {
        "app/api:v1.0.0", "app/api:v1.1.0", "app/api:1.2.3", "app/web:v2.0.0", "app/web:v2.1.0"
    }
    with client(reg, headers={"Accept": ACCEPT}) as c:
        trust = ssl.create_default_context(cafile=str(reg.ca_file))
        assert httpx.get(f"{reg.url}/v2/", verify=trust).status_code == 401
        config = yaml.safe_load(reg.config_file.read_text())
        assert config["notifications"]["endpoints"] and "tls" in config["http"]
        index = c.head("/v2/app/web/manifests/v2.0.0")
        assert index.headers["content-type"] == MEDIA_INDEX
        for ref, digest in pushed.items():
            repo, tag = ref.split(":")
            assert c.head(f"/v2/{repo}/manifests/{tag}").headers["docker-content-digest"] == digest
            assert_signature_verifies(c, repo, digest, f"{reg.address}/{repo}", estate.trusted_key)
        tags = c.get("/v2/app/api/tags/list").json()["tags"]
        assert "latest" not in tags


def test_estate_insecure_and_basic_http(estate: Estate) -> None:
    insecure, basic = estate.registries["insecure"], estate.registries["basic-http"]
    assert insecure.url.startswith("http://") and basic.url.startswith("http://")
    assert httpx.get(f"{insecure.url}/v2/").status_code == 200
    tags = httpx.get(f"{insecure.url}/v2/app/web/tags/list").json()["tags"]
    assert sorted(tags) == ["latest", "v0.9.0"]
    assert not any(t.endswith(".sig") for t in tags)
    challenge = httpx.get(f"{basic.url}/v2/")
    assert challenge.status_code == 401 and challenge.headers["www-authenticate"].startswith("Basic")
    with client(basic) as c:
        assert sorted(c.get("/v2/app/tool/tags/list").json()["tags"]) == ["1.0.0", "1.0.1"]


def test_estate_audit_config_is_valid_and_holds_no_secret(estate: Estate, tmp_path: Path) -> None:
    raw = estate.audit_config()
    config = parse_config(raw, tmp_path / "regguard.yaml")
    assert config.environment == "prod"
    assert config.trusted_keys == [estate.trusted_key]
    assert [t.name for t in config.targets] == ["hardened", "insecure", "basic-http"]
    text = json.dumps(raw)
    secrets = [v for k, v in estate.env.items() if k.endswith("_PASSWORD")]
    assert len(secrets) == 2 and not any(s in text for s in secrets)
    hardened = raw["targets"][0]
    assert estate.env[hardened["password_env"]] == estate.registries["hardened"].password


def test_estate_failure_stops_everything_it_started(tmp_path: Path) -> None:
    def broken(workdir: Path, detach: bool) -> Any:
        raise RuntimeError("extra service failed to start")

    with pytest.raises(RuntimeError, match="extra service failed"):
        start_estate(tmp_path / "estate", extra_services=[broken])
    assert registry_pids_under(tmp_path) == []


# ---- up / down / status across processes --------------------------------------


def run_cli(code: str) -> str:
    """Run sandbox state code in a separate Python process, as the CLI would."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_up_status_down_across_separate_processes(tmp_path: Path) -> None:
    workdir = tmp_path / "sandbox"
    prelude = f"from pathlib import Path; import json; from sandbox.state import *; w = Path({str(workdir)!r})"
    try:
        run_cli(prelude + "; sandbox_up(w)")
        status = json.loads(run_cli(prelude + "; print(json.dumps(sandbox_status(w)))"))
        assert status["running"] is True
        assert {s["name"] for s in status["services"]} == {"hardened", "insecure", "basic-http"}
        pids = [p for s in status["services"] for p in s["pids"]]
        assert all(is_alive(p) for p in pids)  # they outlived the process that started them
        urls = {s["name"]: s["urls"][0] for s in status["services"]}
        assert httpx.get(f"{urls['insecure']}/v2/").status_code == 200

        secrets_file = workdir / SECRETS_FILE
        assert secrets_file.stat().st_mode & 0o777 == 0o600
        secrets = load_secrets(workdir)
        assert set(secrets) == set(status["env_vars"])
        state_text = (workdir / STATE_FILE).read_text()
        passwords = [v for k, v in secrets.items() if k.endswith("_PASSWORD")]
        assert passwords and not any(p in state_text for p in passwords)
        shell = subprocess.run(
            ["sh", "-c", f". {secrets_file}; printf %s \"$REGGUARD_SANDBOX_HARDENED_PASSWORD\""],
            capture_output=True, text=True, check=True,
        )
        assert shell.stdout == secrets["REGGUARD_SANDBOX_HARDENED_PASSWORD"]

        stopped = json.loads(run_cli(prelude + "; print(json.dumps(sandbox_down(w)))"))
        assert len(stopped) == 3
        assert not any(is_alive(p) for p in pids)
        assert not (workdir / STATE_FILE).exists() and not secrets_file.exists()
        assert sandbox_down(workdir) == []  # idempotent
        assert sandbox_status(workdir)["up"] is False
    finally:
        sandbox_down(workdir)
    assert registry_pids_under(workdir) == []


def test_status_reports_dead_services(tmp_path: Path) -> None:
    """A recorded estate whose process died shows as not running, not as up."""
    from sandbox.state import sandbox_up

    workdir = tmp_path / "sandbox"
    try:
        estate = sandbox_up(workdir)
        estate.registries["insecure"].stop()
        status = sandbox_status(workdir)
        alive = {s["name"]: s["alive"] for s in status["services"]}
        assert alive == {"hardened": True, "insecure": False, "basic-http": True}
        assert status["running"] is False
        assert os.environ.get("REGGUARD_SANDBOX_HARDENED_PASSWORD") is None
    finally:
        sandbox_down(workdir)
    assert registry_pids_under(workdir) == []
