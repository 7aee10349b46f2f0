"""Image references parsed the way Docker parses them.

A rule that judges `nginx` versus `docker.io/library/nginx:latest` must see the
same thing the Docker client pulls, so this module follows the Distribution
reference grammar (`distribution/reference`: `regexp.go` + `normalize.go`)
rather than splitting on `/` and `:` by feel:

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := (domain-name | "[" ipv6 "]") [":" port]
    path-comp  := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex      (sha256/sha384/sha512, lower-case hex)

Normalization (`ParseNormalizedNamed`): the first `/`-separated component is
the registry only when it contains `.` or `:` or is `localhost`; otherwise the
registry is `docker.io`, and a single-component Docker Hub path gets
`library/`. `index.docker.io` becomes `docker.io`.

Two deliberate choices:

* An upper-case first component (`Foo/bar`) is *invalid* here, as in Docker
  up to distribution v2.8. Newer `distribution/reference` reads it as a
  registry host named `Foo`; a dot-less upper-case host is almost always a
  typo for a namespace, and calling it invalid surfaces the typo.
* An `http://` / `https://` prefix is accepted (people write it in configs,
  although Docker does not) and kept in `explicit_scheme`, because a plain
  `http://` registry is exactly what RG-SRC-002 looks for.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

DEFAULT_REGISTRY = "docker.io"
LEGACY_REGISTRY = "index.docker.io"
OFFICIAL_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_RE = re.compile(rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_SHAPE_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
_SCHEME_RE = re.compile(r"(https?)://", re.IGNORECASE)
# Algorithms go-digest registers, with the length of their hex encoding.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReference(ValueError):
    """The text is not an image reference; `reason` says why in one phrase."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid image reference {text!r}: {reason}")
        self.text = text
        self.reason = reason


@dataclass(frozen=True)
class ParsedReference:
    """A normalized reference. `raw` is what was written and does not take
    part in equality, so `nginx` and `docker.io/library/nginx` compare equal."""

    registry: str  # "docker.io" when implicit; may carry ":port"
    repository: str  # path below the registry, e.g. "library/nginx"
    tag: str | None = None
    digest: str | None = None
    explicit_scheme: str | None = None  # "http" / "https" when the text had one
    raw: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """`registry/repository`, the fully-qualified repository name."""
        return f"{self.registry}/{self.repository}"

    @property
    def canonical(self) -> str:
        """The fully-qualified reference (no scheme), which parses back to an
        equal `ParsedReference`."""
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        """The short form the Docker CLI prints (`nginx:1.27`, `user/app`)."""
        name = self.name
        first = self.repository.partition("/")[0]
        if self.registry == DEFAULT_REGISTRY and not _names_registry(first):
            # Unlike Docker's FamiliarString, keep `docker.io/` when the first
            # namespace would read back as a registry (`docker.io/a.b/c`).
            name = self.repository
            rest = name.removeprefix(OFFICIAL_PREFIX)
            if rest != name and "/" not in rest:
                name = rest
        if self.tag is not None:
            name += f":{self.tag}"
        if self.digest is not None:
            name += f"@{self.digest}"
        return name

    @property
    def host(self) -> str:
        """The registry without its port (`[::1]` keeps its brackets)."""
        return _split_port(self.registry)[0]

    @property
    def port(self) -> int | None:
        port = _split_port(self.registry)[1]
        return int(port) if port is not None else None

    @property
    def implicit_latest(self) -> bool:
        """Neither tag nor digest: Docker pulls `latest`."""
        return self.tag is None and self.digest is None

    def __str__(self) -> str:
        return self.canonical


def parse_reference(text: str) -> ParsedReference:
    """Parse and normalize `text`; raise `InvalidReference` when Docker would
    refuse it. Surrounding whitespace is not stripped: callers that read files
    strip what their format allows."""
    if not text:
        raise InvalidReference(text, "empty reference")
    scheme, rest = _strip_scheme(text)
    if not rest:
        raise InvalidReference(text, "nothing after the scheme")
    if _IDENTIFIER_RE.fullmatch(rest):
        raise InvalidReference(text, "a bare 64-hex identifier is not a repository name")
    name_and_tag, at, digest = rest.partition("@")
    if at and not digest:
        raise InvalidReference(text, "empty digest after '@'")
    registry, remainder = _split_registry(name_and_tag)
    repository, colon, tag = remainder.partition(":")
    if colon and not tag:
        raise InvalidReference(text, "empty tag after ':'")
    _check_registry(text, registry)
    _check_repository(text, repository)
    if len(registry) + 1 + len(repository) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(text, f"repository name longer than {NAME_TOTAL_LENGTH_MAX} characters")
    if colon:
        _check_tag(text, tag)
    if at:
        _check_digest(text, digest)
    return ParsedReference(
        registry=registry,
        repository=repository,
        tag=tag if colon else None,
        digest=digest if at else None,
        explicit_scheme=scheme,
        raw=text,
    )


def is_ip_registry(host: str) -> bool:
    """True when the registry is addressed by an IP literal (`10.0.0.5:5000`,
    `[::1]:5000`, `127.0.0.1`), with or without a port."""
    candidate = host
    try:
        ipaddress.ip_address(candidate)  # bare IPv6 such as "::1"
        return True
    except ValueError:
        pass
    candidate = _split_port(host)[0]
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def is_official(ref: ParsedReference) -> bool:
    """A Docker Hub official image: `docker.io/library/<name>` with no deeper
    path (the same test Docker uses to shorten it to `<name>`)."""
    if ref.registry != DEFAULT_REGISTRY:
        return False
    rest = ref.repository.removeprefix(OFFICIAL_PREFIX)
    return rest != ref.repository and "/" not in rest


def _strip_scheme(text: str) -> tuple[str | None, str]:
    match = _SCHEME_RE.match(text)
    if match is None:
        return None, text
    return match.group(1).lower(), text[match.end() :]


def _split_registry(name: str) -> tuple[str, str]:
    """`splitDockerDomain`: only a first component with `.` or `:` or equal to
    `localhost` names a registry."""
    first, slash, remainder = name.partition("/")
    if slash and _names_registry(first):
        registry = DEFAULT_REGISTRY if first == LEGACY_REGISTRY else first
    else:
        registry, remainder = DEFAULT_REGISTRY, name
    if registry == DEFAULT_REGISTRY and "/" not in remainder.partition(":")[0]:
        remainder = OFFICIAL_PREFIX + remainder
    return registry, remainder


def _names_registry(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost"


def _split_port(registry: str) -> tuple[str, str | None]:
    if registry.startswith("["):
        end = registry.find("]")
        if end != -1:
            port = registry[end + 1 :]
            return registry[: end + 1], port[1:] if port.startswith(":") and port[1:] else None
    host, colon, port = registry.rpartition(":")
    if colon and port.isdigit() and host:
        return host, port
    return registry, None


def _check_registry(text: str, registry: str) -> None:
    if not _DOMAIN_RE.fullmatch(registry):
        raise InvalidReference(text, f"registry {registry!r} is not a valid host[:port]")


def _check_repository(text: str, repository: str) -> None:
    if _PATH_RE.fullmatch(repository):
        return
    if repository.lower() != repository and _PATH_RE.fullmatch(repository.lower()):
        raise InvalidReference(text, "repository name must be lowercase")
    if "" in repository.split("/"):
        raise InvalidReference(text, "empty path component in repository name")
    raise InvalidReference(
        text,
        f"repository {repository!r} must be lowercase letters and digits "
        "separated by '/', '.', '_', '__' or '-'",
    )


def _check_tag(text: str, tag: str) -> None:
    if not _TAG_RE.fullmatch(tag):
        raise InvalidReference(
            text, "tag must be 1-128 of [A-Za-z0-9_.-] and not start with '.' or '-'"
        )


def _check_digest(text: str, digest: str) -> None:
    """Shape per the reference grammar, then what go-digest accepts: a known
    algorithm with lower-case hex of its exact length."""
    if not _DIGEST_SHAPE_RE.fullmatch(digest):
        raise InvalidReference(text, "digest must be '<algorithm>:<hex>'")
    algorithm, _, encoded = digest.partition(":")
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None:
        raise InvalidReference(text, f"unsupported digest algorithm {algorithm!r}")
    if len(encoded) != length or encoded.lower() != encoded:
        raise InvalidReference(
            text, f"{algorithm} digest must be {length} lower-case hex characters"
        )
