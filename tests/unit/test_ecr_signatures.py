"""ECR signature verification: BatchGetImage of the signature manifests (botocore
Stubber: good signature, wrong key, a signature made for another digest, chunks of
100), the payload download fallback, and the whole collection on in-process moto
(one BatchGetImage per signed repository, none without a trusted key)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from audits.collectors import cosign, ecr, ecr_facts, ecr_signatures
from audits.collectors.base import CollectOptions, RequestCounter
from audits.model import REPOSITORIES, RepositoryFacts
from audits.targets import EcrTarget
from sandbox.ecr_estate import image_manifest, push_images, registry_address
from sandbox.moto_server import MOTO_CREDENTIALS
from sandbox.oci import Manifest
from sandbox.signing import KeyPair, generate_key_pair, signature_for

REPO = "prod/api"
REFERENCE = f"{registry_address()}/{REPO}"
IMAGES = ["sha256:" + c * 64 for c in "abcdef"]
DOWNLOAD_URL = "https://starport-layer-bucket.s3.amazonaws.com/blob?X-Amz-Signature=s3cr3tsig"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_key_pair(tmp_path_factory.mktemp("keys"), "release")


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return generate_key_pair(tmp_path_factory.mktemp("other"), "intruder")


def sign(key: KeyPair, digest: str, *, signed_digest: str | None = None) -> tuple[str, Manifest]:
    """(tag, manifest) of a cosign signature stored for `digest`; the payload names
    `signed_digest` when given (a signature copied from another image)."""
    _, manifest = signature_for(registry_address(), REPO, signed_digest or digest, key.private_key)
    return digest.replace(":", "-", 1) + ".sig", manifest


def described(entries: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    return [{"imageDigest": d, "imageTags": tags} for d, tags in entries]


def batch_answer(manifests: list[Manifest]) -> dict[str, Any]:
    return {
        "images": [
            {"repositoryName": REPO, "imageId": {"imageDigest": m.digest}, "imageManifest": m.data.decode()}
            for m in manifests
        ],
        "failures": [],
    }


def batch_params(digests: list[str]) -> dict[str, Any]:
    return {
        "repositoryName": REPO,
        "imageIds": [{"imageDigest": d} for d in sorted(digests)],
        "acceptedMediaTypes": list(ecr_signatures.SIGNATURE_MANIFEST_TYPES),
    }


def make_reader(
    client: Any, trusted: list[Path], transport: httpx.BaseTransport | None = None
) -> tuple[ecr_signatures.SignatureReader, RequestCounter]:
    counter = RequestCounter()
    ecr.count_requests(client, "ecr", counter)
    downloader = ecr_signatures.LayerDownloader(client, counter, timeout=2, transport=transport)
    return ecr_signatures.SignatureReader(client, cosign.load_keys(trusted), downloader), counter


def ecr_client() -> Any:
    session = boto3.Session(aws_access_key_id="stub", aws_secret_access_key="stub", region_name="us-east-1")
    return session.client("ecr")


def repository(images: list[dict[str, Any]], checks: Any) -> RepositoryFacts:
    return ecr_facts.build_repository_facts(
        REPO, images, anonymous_pull=False, declared_public=False, verifications=checks
    )


def test_good_signature_and_wrong_key_are_told_apart_without_downloads(keys: KeyPair, other_keys: KeyPair) -> None:
    good_tag, good = sign(keys, IMAGES[0])
    bad_tag, bad = sign(other_keys, IMAGES[1])
    images = described(
        [(IMAGES[0], ["v1.0.0"]), (IMAGES[1], ["v1.1.0"]), (good.digest, [good_tag]), (bad.digest, [bad_tag])]
    )
    client = ecr_client()
    reader, counter = make_reader(client, [keys.public_key])
    with Stubber(client) as stub:
        stub.add_response("batch_get_image", batch_answer([good, bad]), batch_params([good.digest, bad.digest]))
        checks = reader.read(REPO, REFERENCE, images)
        stub.assert_no_pending_responses()

    assert checks[good_tag] == (cosign.Verification(True, verified_by=str(keys.public_key)),)
    assert [c.verified for c in checks[bad_tag]] == [False]
    assert checks[bad_tag][0].error == "no trusted key verifies the signature"
    assert counter.by_call == {"ecr:BatchGetImage": 1}  # canonical payloads: nothing downloaded

    tags = {t.name: t for t in repository(images, checks).tags}
    assert [t for t in tags] == ["v1.0.0", "v1.1.0"]
    [ok] = tags["v1.0.0"].signatures or ()
    assert (ok.format, ok.discovered_via, ok.reference, ok.verified) == ("cosign", "tag", good_tag, True)
    [nok] = tags["v1.1.0"].signatures or ()
    assert nok.verified is False and nok.verified_by is None


def test_signature_made_for_another_digest_is_downloaded_and_refused(keys: KeyPair) -> None:
    tag, copied = sign(keys, IMAGES[0], signed_digest=IMAGES[2])  # valid signature, other image
    [layer] = json.loads(copied.data)["layers"]
    payload = next(b.data for b in copied.blobs if b.digest == layer["digest"])
    fetched: list[str] = []

    def s3(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, content=payload)

    client = ecr_client()
    reader, counter = make_reader(client, [keys.public_key], httpx.MockTransport(s3))
    images = described([(IMAGES[0], ["v1.0.0"]), (copied.digest, [tag])])
    with Stubber(client) as stub:
        stub.add_response("batch_get_image", batch_answer([copied]), batch_params([copied.digest]))
        stub.add_response(
            "get_download_url_for_layer",
            {"downloadUrl": DOWNLOAD_URL, "layerDigest": layer["digest"]},
            {"repositoryName": REPO, "layerDigest": layer["digest"]},
        )
        checks = reader.read(REPO, REFERENCE, images)
        stub.assert_no_pending_responses()

    [check] = checks[tag]
    assert check.verified is False
    assert check.error == f"signature is for another image ({IMAGES[2]})"
    assert fetched == [DOWNLOAD_URL]
    assert counter.by_call == {"ecr:BatchGetImage": 1, "ecr:GetDownloadUrlForLayer": 1, "s3:GET layer": 1}


def test_non_canonical_payload_verifies_after_download(keys: KeyPair) -> None:
    """A signature made for another reference of the same image (a pull-through
    name, say) is not reconstructable, but its downloaded payload verifies."""
    tag = IMAGES[0].replace(":", "-", 1) + ".sig"
    _, signed = signature_for("mirror.example.com", REPO, IMAGES[0], keys.private_key)
    [layer] = json.loads(signed.data)["layers"]
    payload = next(b.data for b in signed.blobs if b.digest == layer["digest"])
    client = ecr_client()
    reader, _ = make_reader(
        client, [keys.public_key], httpx.MockTransport(lambda r: httpx.Response(200, content=payload))
    )
    with Stubber(client) as stub:
        stub.add_response("batch_get_image", batch_answer([signed]), batch_params([signed.digest]))
        stub.add_response("get_download_url_for_layer", {"downloadUrl": DOWNLOAD_URL})
        checks = reader.read(REPO, REFERENCE, described([(IMAGES[0], ["v1"]), (signed.digest, [tag])]))
    assert [c.verified for c in checks[tag]] == [True]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("no-api", "GetDownloadUrlForLayer: InternalFailure: ECR.get_download_url_for_layer is not yet implemented"),
        ("http-403", "layer download answered HTTP 403"),
        ("tampered", "downloaded layer does not match sha256:"),
    ],
)
def test_payload_that_cannot_be_downloaded_does_not_verify(keys: KeyPair, setup: str, expected: str) -> None:
    tag, copied = sign(keys, IMAGES[0], signed_digest=IMAGES[2])
    status, body = (403, b"denied") if setup == "http-403" else (200, b"tampered")
    client = ecr_client()
    reader, _ = make_reader(
        client, [keys.public_key], httpx.MockTransport(lambda r: httpx.Response(status, content=body))
    )
    with Stubber(client) as stub:
        stub.add_response("batch_get_image", batch_answer([copied]), batch_params([copied.digest]))
        if setup == "no-api":  # what moto answers
            stub.add_client_error(
                "get_download_url_for_layer",
                "InternalFailure",
                "ECR.get_download_url_for_layer is not yet implemented",
                http_status_code=500,
            )
        else:
            stub.add_response("get_download_url_for_layer", {"downloadUrl": DOWNLOAD_URL})
        checks = reader.read(REPO, REFERENCE, described([(IMAGES[0], ["v1"]), (copied.digest, [tag])]))
    [check] = checks[tag]
    assert check.verified is False
    assert check.error is not None and expected in check.error
    assert check.error.startswith("payload not reconstructable and not downloadable: ")
    assert "s3cr3tsig" not in check.error  # the pre-signed URL never leaves


def test_more_than_100_signatures_are_read_in_chunks_of_100(keys: KeyPair) -> None:
    subjects = [f"sha256:{n:064x}" for n in range(1, 151)]
    signed = [sign(keys, d) for d in subjects]
    entries = [(d, [f"v{i}"]) for i, d in enumerate(subjects)] + [(m.digest, [t]) for t, m in signed]
    by_digest = sorted((m for _, m in signed), key=lambda m: m.digest)
    client = ecr_client()
    reader, counter = make_reader(client, [keys.public_key])
    with Stubber(client) as stub:
        for chunk in (by_digest[:100], by_digest[100:]):
            stub.add_response("batch_get_image", batch_answer(chunk), batch_params([m.digest for m in chunk]))
        checks = reader.read(REPO, REFERENCE, described(entries))
        stub.assert_no_pending_responses()
    assert counter.by_call == {"ecr:BatchGetImage": 2}
    assert len(checks) == 150
    assert all([c.verified for c in found] == [True] for found in checks.values())


def test_unreadable_signature_manifests_stay_unverified_with_the_reason(keys: KeyPair) -> None:
    tag_a, sig_a = sign(keys, IMAGES[0])
    tag_b, sig_b = sign(keys, IMAGES[1])
    answer = batch_answer([sig_a])
    answer["failures"] = [
        {"imageId": {"imageDigest": sig_b.digest}, "failureCode": "ImageNotFound", "failureReason": "gone"}
    ]
    images = described([(IMAGES[0], ["a"]), (IMAGES[1], ["b"]), (sig_a.digest, [tag_a]), (sig_b.digest, [tag_b])])
    client = ecr_client()
    reader, _ = make_reader(client, [keys.public_key])
    with Stubber(client) as stub:
        stub.add_response("batch_get_image", answer, batch_params([sig_a.digest, sig_b.digest]))
        checks = reader.read(REPO, REFERENCE, images)
        stub.add_client_error("batch_get_image", "AccessDeniedException", "no ecr:BatchGetImage", 400)
        denied = reader.read(REPO, REFERENCE, images)
    assert [c.verified for c in checks[tag_a]] == [True]
    assert checks[tag_b] == (
        cosign.Verification(None, error="signature manifest not read: BatchGetImage: ImageNotFound: gone"),
    )
    for tag in (tag_a, tag_b):
        [check] = denied[tag]
        assert check.verified is None
        assert check.error == "signature manifest not read: BatchGetImage: AccessDeniedException: no ecr:BatchGetImage"


def test_referrer_signatures_are_read_in_the_same_batch(keys: KeyPair) -> None:
    _, referrer = sign(keys, IMAGES[0])
    tag_sig_tag, tag_sig = sign(keys, IMAGES[1])
    images = described([(IMAGES[0], ["v1"]), (IMAGES[1], ["v2"]), (tag_sig.digest, [tag_sig_tag])]) + [
        {
            "imageDigest": referrer.digest,
            "subjectManifestDigest": IMAGES[0],
            "artifactMediaType": cosign.COSIGN_ARTIFACT_TYPE,
        }
    ]
    client = ecr_client()
    reader, counter = make_reader(client, [keys.public_key])
    with Stubber(client) as stub:
        stub.add_response(
            "batch_get_image", batch_answer([referrer, tag_sig]), batch_params([referrer.digest, tag_sig.digest])
        )
        checks = reader.read(REPO, REFERENCE, images)
    tags = {t.name: t for t in repository(images, checks).tags}
    [via_referrer] = tags["v1"].signatures or ()
    assert (via_referrer.discovered_via, via_referrer.reference, via_referrer.verified) == (
        "referrers",
        referrer.digest,
        True,
    )
    assert [s.verified for s in tags["v2"].signatures or ()] == [True]
    assert counter.by_call == {"ecr:BatchGetImage": 1}


def test_manifest_without_signature_layers_is_no_signature(keys: KeyPair) -> None:
    tag = IMAGES[0].replace(":", "-", 1) + ".sig"
    plain = Manifest("application/vnd.oci.image.manifest.v1+json", image_manifest("not-a-signature").encode())
    images = described([(IMAGES[0], ["v1"]), (plain.digest, [tag])])
    client = ecr_client()
    reader, _ = make_reader(client, [keys.public_key])
    with Stubber(client) as stub:
        stub.add_response("batch_get_image", batch_answer([plain]), batch_params([plain.digest]))
        checks = reader.read(REPO, REFERENCE, images)
    assert checks == {tag: ()}
    assert repository(images, checks).tags[0].signatures == ()


# --------------------------------------------------------------------------
# The whole collection on in-process moto
# --------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("ecr", region_name="us-east-1")


def collect(trusted: tuple[str, ...]) -> tuple[dict[str, RepositoryFacts], RequestCounter]:
    target = EcrTarget(name="core", kind="ecr", region="us-east-1")
    options = CollectOptions(concurrency=2, trusted_keys=trusted)
    counter = RequestCounter()
    facts = ecr.collect_with_clients(target, options, ecr.make_clients(target, options), counter=counter)
    return {r.name: r for r in facts.facts[REPOSITORIES].value or ()}, counter


def test_collection_verifies_with_one_batch_per_signed_repository(aws: Any, keys: KeyPair) -> None:
    for name in ("prod/api", "prod/web", "dev/tool"):
        aws.create_repository(repositoryName=name)
    push_images(aws, "prod/api", ["v1", "v2"], signed=["v1", "v2"], signing_key=keys.private_key)
    push_images(aws, "prod/web", ["v3", "dev-1"], signed=["v3"], signing_key=keys.private_key)
    push_images(aws, "dev/tool", ["latest"])

    repos, counter = collect((str(keys.public_key),))
    assert counter.by_call["ecr:BatchGetImage"] == 2  # dev/tool has no signature: no call
    for tag in (*repos["prod/api"].tags, repos["prod/web"].tags[1]):
        assert [(s.verified, s.verified_by) for s in tag.signatures or ()] == [(True, str(keys.public_key))]
    assert [t.name for t in repos["prod/web"].tags] == ["dev-1", "v3"]
    assert repos["prod/web"].tags[0].signatures == ()

    unkeyed, counter = collect(())
    assert "ecr:BatchGetImage" not in counter.by_call
    [sig] = unkeyed["prod/api"].tags[0].signatures or ()
    assert (sig.verified, sig.verify_error) == (None, "no trusted key configured")


def test_a_dripping_layer_download_is_cut_at_the_deadline() -> None:
    """httpx's read timeout restarts with every byte; the download has a total deadline."""
    import time

    from botocore.stub import Stubber

    class Drip(httpx.SyncByteStream):
        def __iter__(self) -> Any:
            for _ in range(200):
                time.sleep(0.02)
                yield b"x"

    client = ecr_client()
    stubber = Stubber(client)
    digest = "sha256:" + "a" * 64
    stubber.add_response(
        "get_download_url_for_layer",
        {"downloadUrl": DOWNLOAD_URL, "layerDigest": digest},
        {"repositoryName": REPO, "layerDigest": digest},
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=Drip()))
    downloader = ecr_signatures.LayerDownloader(client, RequestCounter(), timeout=0.3, transport=transport)
    started = time.monotonic()
    with stubber, pytest.raises(ecr_signatures.PayloadUnavailable, match="no complete answer within 0.3 s"):
        downloader(REPO, digest)
    assert time.monotonic() - started < 1.5
