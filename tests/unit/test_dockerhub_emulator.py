"""The Docker Hub emulator holds itself to Docker's description: a body that
drifts from the schema is refused (never sent), an undocumented operation or
query parameter is not served, and faults answer with documented statuses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sandbox.dockerhub_emulator import Fault, HubEmulator
from sandbox.dockerhub_estate import AUDITOR, estate_state

TOKEN = "dckr_pat_emulator-test"


@pytest.fixture
def hub() -> Iterator[HubEmulator]:
    with HubEmulator(estate_state(TOKEN, datetime.now(UTC))) as emulator:
        yield emulator


def session(hub: HubEmulator) -> httpx.Client:
    client = httpx.Client(base_url=hub.url, timeout=5)
    answer = client.post("/v2/auth/token", json={"identifier": AUDITOR, "secret": TOKEN})
    client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return client


def test_documented_answers_pass_the_check(hub: HubEmulator) -> None:
    client = session(hub)
    for path in ("/v2/namespaces/regguard-good/repositories", "/v2/namespaces/regguard-good/repositories/api",
                 "/v2/namespaces/regguard-good/repositories/api/tags", "/v2/access-tokens",
                 "/v2/orgs/regguard-good/access-tokens", "/v2/orgs/regguard-good/settings",
                 "/v2/auditlogs/regguard-good"):  # fmt: skip
        assert client.get(path).status_code == 200, path
    assert hub.api.violations == []


def test_a_broken_body_is_refused_not_sent(hub: HubEmulator) -> None:
    def drop_settings(path: str, body: Any) -> Any:
        if path.endswith("/repositories/api"):
            return {k: v for k, v in body.items() if k != "immutable_tags_settings"}
        return body

    hub.api.break_body = drop_settings
    answer = session(hub).get("/v2/namespaces/regguard-good/repositories/api")
    assert answer.status_code == 500 and answer.content == b""
    assert any("immutable_tags_settings" in v for v in hub.api.violations)


def test_undocumented_operations_and_parameters_are_not_served(hub: HubEmulator) -> None:
    client = session(hub)
    assert client.get("/v2/namespaces/regguard-good/secrets").status_code == 404
    assert client.get("/v2/access-tokens", params={"include_secrets": "1"}).status_code == 404
    assert len(hub.api.violations) == 2


def test_faults_answer_with_documented_statuses_and_rate_limit_headers(hub: HubEmulator) -> None:
    hub.state.faults += [Fault(r"/settings$", 403), Fault(r"/repositories$", 429, retry_after="5")]
    client = session(hub)
    assert client.get("/v2/orgs/regguard-good/settings").status_code == 403
    limited = client.get("/v2/namespaces/regguard-good/repositories")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "5"
    assert int(limited.headers["x-ratelimit-remaining"]) < int(limited.headers["x-ratelimit-limit"])
    assert client.get("/v2/namespaces/regguard-good/repositories").status_code == 200  # the fault was used up
    assert client.get("/v2/orgs/regguard-good/access-tokens", headers={"Authorization": "Bearer x"}).status_code == 401
    assert hub.api.violations == []


def test_next_links_name_the_origin_the_client_used(hub: HubEmulator) -> None:
    """Behind a proxy (the bench's latency proxy) a link to the emulator's own port would leave the proxy."""
    client = session(hub)
    answer = client.get("/v2/namespaces/regguard-good/repositories", params={"page_size": 1},
                        headers={"Host": "127.0.0.1:1234"})  # fmt: skip
    assert answer.json()["next"] == "http://127.0.0.1:1234/v2/namespaces/regguard-good/repositories?page=2&page_size=1"
    assert client.get(answer.json()["next"].replace("127.0.0.1:1234", hub.url.removeprefix("http://"))).json()[
        "next"] is None  # fmt: skip
