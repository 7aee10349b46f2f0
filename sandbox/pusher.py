"""A bulk pusher over the OCI distribution API (httpx, asyncio).

skopeo is the realistic client but costs a process per image; benchmarks and
large fixtures need hundreds of repositories x tags in seconds. This pusher speaks
the distribution spec directly: HEAD each blob, upload it monolithically
(POST then PUT ?digest=) only when missing, then PUT the manifest by tag. A blob
shared by several tags of a repository is uploaded once (concurrent pushes of it
wait on the same task); a blob already uploaded to another repository is mounted
instead of re-sent. Concurrency is bounded by a semaphore around each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Coroutine, Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urljoin

import httpx

from sandbox.oci import Blob, Manifest, sha256_digest

if TYPE_CHECKING:
    from sandbox.registry import RunningRegistry


T = TypeVar("T")


class PushError(RuntimeError):
    """A registry refused a push step; names the request, never the credentials."""


def _describe(response: httpx.Response) -> str:
    body = response.text[:300].strip()
    return f"{response.request.method} {response.request.url.path}: HTTP {response.status_code} {body}"


async def _all(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; on the first failure cancel the others and raise that failure
    (not an ExceptionGroup, so callers can catch PushError)."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as eg:
        raise eg.exceptions[0] from None
    return [t.result() for t in tasks]


class OciPusher:
    """Push `Manifest` values to one registry. Use as `async with OciPusher(...) as p:`
    or call `push_many_sync` from synchronous code."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        verify_tls: bool = True,
        concurrency: int = 16,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = httpx.BasicAuth(username, password) if username and password else None
        self._verify: ssl.SSLContext | bool = verify_tls
        if verify_tls and ca_file is not None:
            self._verify = ssl.create_default_context(cafile=str(ca_file))
        self._concurrency = concurrency
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._blob_tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._blob_home: dict[str, str] = {}
        self.requests = 0
        self.uploads = 0
        """Blob uploads actually sent (not skipped by HEAD, not mounted)."""

    @classmethod
    def for_registry(cls, reg: RunningRegistry, **kwargs: Any) -> OciPusher:
        return cls(
            reg.url, username=reg.username, password=reg.password, ca_file=reg.ca_file, **kwargs
        )

    @property
    def address(self) -> str:
        """`host:port` of the registry, as image references spell it."""
        return httpx.URL(self.base_url).netloc.decode()

    async def __aenter__(self) -> OciPusher:
        limits = httpx.Limits(
            max_connections=self._concurrency, max_keepalive_connections=self._concurrency
        )
        self._client = httpx.AsyncClient(
            auth=self._auth, verify=self._verify, timeout=self._timeout, limits=limits
        )
        self._slots = asyncio.Semaphore(self._concurrency)
        self._blob_tasks.clear()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pending = [t for t in self._blob_tasks.values() if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._blob_tasks.clear()
        if self._client is not None:
            await self._client.aclose()
        self._client = None

    async def _request(
        self, method: str, url: str, *, content: bytes | None = None, headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        if self._client is None or self._slots is None:
            raise RuntimeError("OciPusher must be used inside `async with`")
        async with self._slots:
            self.requests += 1
            return await self._client.request(
                method, url, content=content, headers=headers, params=params
            )

    # -- blobs ----------------------------------------------------------------
    async def push_blob(self, repo: str, blob: Blob) -> None:
        """Ensure `blob` is in `repo`; concurrent callers share one upload."""
        key = (repo, blob.digest)
        task = self._blob_tasks.get(key)
        if task is None:
            task = asyncio.ensure_future(self._upload_if_missing(repo, blob))
            self._blob_tasks[key] = task
        await task

    async def _upload_if_missing(self, repo: str, blob: Blob) -> None:
        """HEAD, then mount from the repository that first claimed this blob (after its
        own upload finished), else a monolithic upload."""
        home = self._blob_home.setdefault(blob.digest, repo)
        if home != repo:
            with contextlib.suppress(Exception):  # the home's failure is reported there
                await self._blob_tasks[(home, blob.digest)]
        head = await self._request("HEAD", f"{self.base_url}/v2/{repo}/blobs/{blob.digest}")
        if head.status_code == 200:
            return
        if head.status_code != 404:
            raise PushError(_describe(head))
        params = {"mount": blob.digest, "from": home} if home != repo else None
        start = await self._request("POST", f"{self.base_url}/v2/{repo}/blobs/uploads/", params=params)
        if start.status_code == 201:  # mounted from another repository
            return
        if start.status_code != 202 or "location" not in start.headers:
            raise PushError(_describe(start))
        # The Location carries upload state in its query; add the digest to it.
        location = httpx.URL(urljoin(f"{self.base_url}/", start.headers["location"]))
        done = await self._request(
            "PUT",
            str(location.copy_add_param("digest", blob.digest)),
            content=blob.data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if done.status_code != 201:
            raise PushError(_describe(done))
        self.uploads += 1

    # -- manifests ------------------------------------------------------------
    async def put_manifest(self, repo: str, reference: str, media_type: str, body: bytes) -> str:
        """PUT a manifest by tag or digest; returns the digest the registry reports."""
        resp = await self._request(
            "PUT",
            f"{self.base_url}/v2/{repo}/manifests/{reference}",
            content=body,
            headers={"Content-Type": media_type},
        )
        if resp.status_code != 201:
            raise PushError(_describe(resp))
        expected = sha256_digest(body)
        reported = resp.headers.get("docker-content-digest", expected)
        if reported != expected:
            raise PushError(f"{repo}:{reference}: registry stored {reported}, sent {expected}")
        return expected

    async def push(self, repo: str, tag: str, manifest: Manifest) -> str:
        """Push an image or index (blobs, child manifests, then the tag); returns its digest."""
        await _all(self.push_blob(repo, b) for b in set(manifest.all_blobs()))
        children = [m for m in manifest.walk() if m is not manifest]
        await _all(self.put_manifest(repo, c.digest, c.media_type, c.data) for c in children)
        return await self.put_manifest(repo, tag, manifest.media_type, manifest.data)

    async def push_many(self, items: Iterable[tuple[str, str, Manifest]]) -> list[str]:
        """Push (repo, tag, manifest) items concurrently; digests in input order.
        The first failure cancels the rest and is raised as itself."""
        return await _all(self.push(r, t, m) for r, t, m in items)

    def push_many_sync(self, items: Iterable[tuple[str, str, Manifest]]) -> list[str]:
        """`push_many` for synchronous callers (opens and closes its own client)."""

        async def run() -> list[str]:
            async with self:
                return await self.push_many(items)

        return asyncio.run(run())
