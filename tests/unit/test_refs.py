"""The reference parser against the Distribution grammar: tricky cases by
table, and seeded generated inputs for the properties (round trip, never
crash). Generation uses `random.Random(seed)` so a failure reproduces."""

from __future__ import annotations

import random
import re
import string

import pytest

from audits.refs import (
    InvalidReference,
    ParsedReference,
    is_ip_registry,
    is_official,
    parse_reference,
)

SHA = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.27-alpine", "docker.io", "library/nginx", "1.27-alpine", None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/nginx:1", "docker.io", "library/nginx", "1", None),
        ("index.docker.io/bitnami/redis", "docker.io", "bitnami/redis", None, None),
        ("bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/a", "localhost:5000", "a", None, None),
        ("a:5000/b", "a:5000", "b", None, None),
        ("a/b:5000", "docker.io", "a/b", "5000", None),
        ("test.com:5000", "docker.io", "library/test.com", "5000", None),
        ("localhost", "docker.io", "library/localhost", None, None),
        ("[::1]:5000/x", "[::1]:5000", "x", None, None),
        ("[fe80::1]/team/x:v1", "[fe80::1]", "team/x", "v1", None),
        ("10.0.0.5:5000/app", "10.0.0.5:5000", "app", None, None),
        ("registry.example.com:443/team/app:v1.2.3", "registry.example.com:443", "team/app", "v1.2.3", None),
        ("Registry.Example.com/team/app", "Registry.Example.com", "team/app", None, None),
        (f"nginx@{SHA}", "docker.io", "library/nginx", None, SHA),
        (f"nginx:1.27@{SHA}", "docker.io", "library/nginx", "1.27", SHA),
        ("ghcr.io/org/sub/team/app:Release_1", "ghcr.io", "org/sub/team/app", "Release_1", None),
        ("a__b/c--d/e.f/g_h", "docker.io", "a__b/c--d/e.f/g_h", None, None),
        ("ubuntu:" + "x" * 128, "docker.io", "library/ubuntu", "x" * 128, None),
    ],
)
def test_valid_references_normalize_like_docker(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.raw == text
    assert ref.explicit_scheme is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Foo/bar", "lowercase"),
        ("NGINX:1", "lowercase"),
        ("docker.io/Library/nginx", "lowercase"),
        ("registry.example.com/Team/app", "lowercase"),
        ("docker.io/", "empty path component"),
        ("a//b", "empty path component"),
        ("nginx:", "empty tag"),
        ("nginx@", "empty digest"),
        ("nginx:-bad", "tag must be"),
        ("nginx:.bad", "tag must be"),
        ("ubuntu:" + "x" * 129, "tag must be"),
        ("nginx:1:2", "tag must be"),
        ("a_/b", "must be lowercase letters"),
        ("a-/b", "must be lowercase letters"),
        ("-a/b", "must be lowercase letters"),
        ("a.../b", "not a valid host"),
        ("a..b", "must be lowercase letters"),
        ("a___b", "must be lowercase letters"),
        ("nginx latest", "must be lowercase letters"),
        ("exa_mple.com/app", "not a valid host"),
        ("-example.com/app", "not a valid host"),
        ("example.com:port/app", "not a valid host"),
        ("[zz::1]:5000/app", "not a valid host"),
        ("nginx@sha256:abc", "digest must be"),
        ("nginx@sha256:" + "A" * 64, "lower-case hex"),
        ("nginx@sha256:" + "a" * 63 + "0a", "lower-case hex"),
        ("nginx@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("nginx@sha256:" + "a" * 64 + "@x", "digest must be"),
        ("0123456789abcdef" * 4, "64-hex identifier"),
        ("example.com/" + "a" * 250, "longer than 255"),
        ("http://", "nothing after the scheme"),
    ],
)
def test_invalid_references_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert reason in info.value.reason
    assert info.value.text == text


def test_name_of_exactly_255_characters_is_accepted() -> None:
    registry = "example.com"
    ref = parse_reference(f"{registry}/" + "a" * (255 - len(registry) - 1))
    assert len(ref.name) == 255


@pytest.mark.parametrize(
    ("text", "scheme", "canonical"),
    [
        ("http://10.0.0.5:5000/app:1", "http", "10.0.0.5:5000/app:1"),
        ("HTTPS://registry.example.com/team/app", "https", "registry.example.com/team/app"),
        ("http://nginx", "http", "docker.io/library/nginx"),
    ],
)
def test_explicit_scheme_is_recorded_not_part_of_the_name(text: str, scheme: str, canonical: str) -> None:
    ref = parse_reference(text)
    assert ref.explicit_scheme == scheme
    assert ref.canonical == canonical


def test_familiar_form_matches_docker_cli() -> None:
    assert parse_reference("docker.io/library/nginx:1").familiar == "nginx:1"
    assert parse_reference("docker.io/bitnami/redis").familiar == "bitnami/redis"
    assert parse_reference("docker.io/library/a/b").familiar == "library/a/b"
    assert parse_reference("quay.io/x/y@" + SHA).familiar == "quay.io/x/y@" + SHA
    # a dotted first namespace would read back as a registry, so it stays qualified
    assert parse_reference("docker.io/a.b/c").familiar == "docker.io/a.b/c"


def test_equality_ignores_how_it_was_written() -> None:
    assert parse_reference("nginx") == parse_reference("index.docker.io/library/nginx")
    assert parse_reference("nginx:1") != parse_reference("nginx:2")


def test_host_port_and_implicit_latest() -> None:
    ref = parse_reference("[::1]:5000/x")
    assert (ref.host, ref.port) == ("[::1]", 5000)
    plain = parse_reference("registry.example.com/x")
    assert (plain.host, plain.port) == ("registry.example.com", None)
    assert plain.implicit_latest
    assert not parse_reference("x:1").implicit_latest
    assert not parse_reference(f"x@{SHA}").implicit_latest


@pytest.mark.parametrize(
    ("registry", "expected"),
    [
        ("10.0.0.5:5000", True),
        ("10.0.0.5", True),
        ("[::1]:5000", True),
        ("[fe80::1]", True),
        ("::1", True),
        ("localhost:5000", False),
        ("registry.example.com:443", False),
        ("999.1.1.1:5000", False),  # grammatical host, but not an IP address
        ("docker.io", False),
    ],
)
def test_is_ip_registry(registry: str, expected: bool) -> None:
    assert is_ip_registry(registry) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", True),
        ("docker.io/library/redis:7", True),
        ("bitnami/redis", False),
        ("library/a/b", False),
        ("registry.example.com/library/nginx", False),
    ],
)
def test_is_official(text: str, expected: bool) -> None:
    assert is_official(parse_reference(text)) is expected


def test_parsed_reference_is_frozen() -> None:
    ref = parse_reference("nginx")
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------
# Properties over generated input
# ---------------------------------------------------------------------------

# The grammar written out independently of the module under test: whatever
# the parser accepts must print as a canonical string this pattern matches.
_G_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_G_DOMAIN = rf"(?:{_G_LABEL}(?:\.{_G_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_G_COMP = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_G_DIGEST = r"sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}"
_G_REFERENCE = re.compile(
    rf"({_G_DOMAIN})/({_G_COMP}(?:/{_G_COMP})*)(?::([\w][\w.-]{{0,127}}))?(?:@({_G_DIGEST}))?",
    re.ASCII,
)


def _component(rng: random.Random) -> str:
    alnum = string.ascii_lowercase + string.digits
    parts = ["".join(rng.choices(alnum, k=rng.randint(1, 6))) for _ in range(rng.randint(1, 3))]
    out = parts[0]
    for part in parts[1:]:
        out += rng.choice([".", "_", "__", "-", "---"]) + part
    return out


def _domain(rng: random.Random) -> str | None:
    choice = rng.randrange(6)
    if choice == 0:
        return None
    if choice == 1:
        return "localhost" + rng.choice(["", ":5000"])
    if choice == 2:
        return f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.0.{rng.randint(1, 254)}:{rng.randint(1, 65535)}"
    if choice == 3:
        return "[" + rng.choice(["::1", "fe80::1", "2001:db8::5"]) + "]" + rng.choice(["", ":443"])
    if choice == 4:
        return rng.choice(["docker.io", "index.docker.io"])
    letters = string.ascii_letters + string.digits
    labels = ["".join(rng.choices(letters, k=rng.randint(1, 5))) for _ in range(rng.randint(2, 3))]
    return ".".join(labels) + rng.choice(["", ":5000"])


def _valid_reference(rng: random.Random) -> str:
    domain = _domain(rng)
    parts = [_component(rng) for _ in range(rng.randint(1, 3))]
    if domain is None and len(parts) > 1:
        parts[0] = parts[0].replace(".", "-")  # a dotted first component names a registry
    path = "/".join(parts)
    text = f"{domain}/{path}" if domain else path
    if rng.random() < 0.6:
        first = rng.choice(string.ascii_letters + string.digits + "_")
        text += ":" + first + "".join(rng.choices(string.ascii_letters + string.digits + "_.-", k=rng.randint(0, 20)))
    if rng.random() < 0.4:
        text += "@sha256:" + "".join(rng.choices("0123456789abcdef", k=64))
    return text


def test_generated_valid_references_parse_and_round_trip() -> None:
    rng = random.Random(20261127)
    for _ in range(3000):
        text = _valid_reference(rng)
        ref = parse_reference(text)
        assert parse_reference(ref.canonical) == ref, text
        assert parse_reference(ref.familiar) == ref, text
        assert _G_REFERENCE.fullmatch(ref.canonical), text
        assert parse_reference("http://" + text) == ParsedReference(
            ref.registry, ref.repository, ref.tag, ref.digest, explicit_scheme="http"
        )


def test_arbitrary_text_never_crashes_and_accepted_text_is_grammatical() -> None:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "/:@._-[] \t\n\u00e9\u0131\U0001f600" + "%$"
    accepted = 0
    for _ in range(20000):
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 40)))
        if rng.random() < 0.3:
            text = _valid_reference(rng)[: rng.randint(0, 60)] + text[: rng.randint(0, 3)]
        try:
            ref = parse_reference(text)
        except InvalidReference as exc:
            assert exc.reason
            continue
        accepted += 1
        assert _G_REFERENCE.fullmatch(ref.canonical), text
        assert parse_reference(ref.canonical) == ref, text
    assert accepted > 100  # the generator reaches the accepting paths too
