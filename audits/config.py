"""The audit configuration (`regguard.yaml`) as pydantic models.

Bad input must produce one line a user can act on: the file, the key and what
is expected, never a traceback. Secrets are only ever named (`password_env`),
so a config file that carries one inline is refused outright.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml
from pydantic import Field, ValidationError, field_validator

from audits import kinds
from audits.targets import Strict, TargetConfig
from audits.vocabulary import DEFAULT_FRAMEWORKS, FRAMEWORKS
from audits.waivers import Waiver

Framework = Literal["soc2", "nist-800-53", "fedramp-low", "fedramp-moderate", "fedramp-high"]
assert get_args(Framework) == FRAMEWORKS, "audits.vocabulary.FRAMEWORKS and Framework must list the same names"

# Keys that would hold a secret value if written inline.
_INLINE_SECRET_KEYS = frozenset(
    {
        "password",
        "token",
        "secret",
        "auth",
        "api_key",
        "access_token",
        "identitytoken",
        "aws_secret_access_key",
        "secret_access_key",
        "client_secret",
    }
)
_NO_SECRETS_HINT = "regguard.yaml names secrets only by environment variable (e.g. password_env in a target)"


class ConfigError(Exception):
    """A one-line, user-facing description of what is wrong in the config."""


class Thresholds(Strict):
    cert_min_days: int = Field(default=30, ge=0)
    credential_max_age_days: int = Field(default=90, ge=1)
    max_vuln_severity: Literal["critical", "high", "medium", "low"] = "high"
    pull_spike_factor: float = Field(default=5.0, gt=1.0)


def _default_frameworks() -> list[Framework]:
    return [cast(Framework, f) for f in DEFAULT_FRAMEWORKS]


class AuditConfig(Strict):
    environment: str = "dev"
    use_cases: list[str] = Field(default_factory=list)
    frameworks: list[Framework] = Field(default_factory=_default_frameworks)
    thresholds: Thresholds = Field(default_factory=lambda: Thresholds())
    trusted_keys: list[Path] = Field(default_factory=list)
    production_patterns: list[str] = Field(default_factory=list)
    allowed_registries: list[str] = Field(default_factory=list)
    allowed_namespaces: list[str] = Field(default_factory=list)
    history_dir: Path | None = Field(None, description="the JSON-file history of earlier versions (imported once)")
    history: str | None = Field(None, description="history database: a SQLite path or a postgresql:// URL")
    waivers: list[Waiver] = Field(default_factory=list)
    targets: list[TargetConfig] = Field(min_length=1)

    @field_validator("targets", mode="before")
    @classmethod
    def _targets_by_kind(cls, targets: Any) -> Any:
        """Each entry validates against its kind's own model (from the kind
        table); `parse_config` does this first to name the failing key."""
        if not isinstance(targets, list):
            return targets
        return [t if isinstance(t, TargetConfig) else _target_model(t).model_validate(t) for t in targets]

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, targets: list[TargetConfig]) -> list[TargetConfig]:
        seen: set[str] = set()
        for t in targets:
            if t.name in seen:
                raise ValueError(f"target name {t.name!r} is used twice")
            seen.add(t.name)
        return targets

    @field_validator("history")
    @classmethod
    def _no_password_in_history_url(cls, url: str | None) -> str | None:
        if url and "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
            userinfo = url.split("://", 1)[1].split("@", 1)[0]
            if ":" in userinfo:
                raise ValueError("secrets must not be written in the config; give the password in PGPASSWORD "
                                 "or ~/.pgpass")
        return url

    @field_validator("use_cases")
    @classmethod
    def _known_use_cases(cls, use_cases: list[str]) -> list[str]:
        from audits.matrix import USE_CASES

        unknown = [u for u in use_cases if u not in USE_CASES]
        if unknown:
            raise ValueError(
                f"unknown use case {unknown[0]!r}; expected one of {', '.join(sorted(USE_CASES))}"
            )
        return use_cases


def _target_model(entry: Any) -> type[TargetConfig]:
    kind = entry.get("kind") if isinstance(entry, dict) else None
    if not isinstance(kind, str):
        raise ValueError("every target needs a kind")
    return kinds.get(kind).target


def load_config(path: Path) -> AuditConfig:
    """Read and validate `path`; raise ConfigError with a one-line message."""
    return parse_config(_load_yaml(_read_config_text(path), path), path)


# A real audit config is a few KB with a few hundred YAML nodes, nested about
# five levels (top -> targets -> target -> repositories -> name). The caps sit
# far above that and far below what hurts: 100,000 nodes take the secret scan
# and pydantic well under a second; 32 levels stay far from Python's
# recursion limit in PyYAML's composer.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_NODES = 100_000
MAX_CONFIG_DEPTH = 32


def _read_config_text(path: Path) -> str:
    """The file as text, at most MAX_CONFIG_BYTES of it (`/dev/stdin` works;
    `/dev/zero` is refused instead of read forever)."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; not an audit config")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


class _TooComplex(yaml.YAMLError):
    """A document the loader refuses to compose or expand; `where` is a mark."""

    def __init__(self, what: str, where: yaml.Mark | None) -> None:
        super().__init__(what)
        self.what = what
        self.problem_mark = where


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_CONFIG_DEPTH levels, before
    PyYAML's recursive composer can hit Python's recursion limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_CONFIG_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _TooComplex(f"nested deeper than {MAX_CONFIG_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _load_yaml(text: str, path: Path) -> Any:
    """Parse one YAML document safely; every failure is one ConfigError line.

    Aliases stay allowed (anchors and `<<:` merge keys are how people share
    target settings), but the document is measured as if every alias were
    expanded before anything walks it: PyYAML shares aliased nodes, while the
    inline-secret scan and pydantic visit each use, so 400 bytes of nested
    aliases would cost them 10**9 visits."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _ExpansionBudget().measure(node, depth=1)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(path, exc)) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a constructor refused a value: 2024-13-45
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1})" if mark is not None else ""
    if isinstance(exc, _TooComplex):
        return f"{path}{where}: {exc.what}"
    return f"{path}{where}: not valid YAML"


class _ExpansionBudget:
    """Counts a node graph's nodes and height as if aliases were copies,
    visiting each shared node once (memoised), refusing cycles."""

    def __init__(self) -> None:
        self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
        self._open: set[int] = set()

    def measure(self, node: yaml.Node, depth: int) -> tuple[int, int]:
        if depth > MAX_CONFIG_DEPTH:  # checked on the way down: chained aliases can nest without end
            raise _TooComplex(f"nested deeper than {MAX_CONFIG_DEPTH} levels once aliases expand", node.start_mark)
        key = id(node)
        if key in self._open:
            raise _TooComplex("an alias refers to itself (a recursive structure)", node.start_mark)
        if key not in self._measured:
            self._open.add(key)
            self._measured[key] = self._children(node, depth)
            self._open.discard(key)
        size, height = self._measured[key]
        if depth + height - 1 > MAX_CONFIG_DEPTH:
            raise _TooComplex(f"nested deeper than {MAX_CONFIG_DEPTH} levels once aliases expand", node.start_mark)
        return size, height

    def _children(self, node: yaml.Node, depth: int) -> tuple[int, int]:
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            return 1, 1
        size, height = 1, 1
        for child in children:
            child_size, child_height = self.measure(child, depth + 1)
            size += child_size
            height = max(height, child_height + 1)
            if size > MAX_CONFIG_NODES:
                raise _TooComplex(
                    f"aliases expand to more than {MAX_CONFIG_NODES} nodes (an alias bomb?)", node.start_mark
                )
        return size, height


def parse_config(raw: Any, path: Path) -> AuditConfig:
    """Validate an already-parsed mapping; relative paths resolve against the
    config file's folder so a config works from any working directory."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    _refuse_inline_secrets(raw, path, "", _NO_SECRETS_HINT)
    targets = [_parse_target(entry, path, i) for i, entry in enumerate(_target_entries(raw, path))]
    try:
        config = AuditConfig.model_validate({**raw, "targets": targets} if "targets" in raw else raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    return _resolve_paths(config, path.parent)


def _target_entries(raw: dict[str, Any], path: Path) -> list[Any]:
    entries = raw.get("targets", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: targets: expected a list of targets")
    return entries


def _parse_target(entry: Any, path: Path, index: int) -> TargetConfig:
    """One target against its kind's model, errors named `targets[i].key`."""
    where = f"targets[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: {where}: expected a mapping with name and kind")
    kind = entry.get("kind")
    if kind is None:
        expected = ", ".join(kinds.names())
        raise ConfigError(f"{path}: {where}.kind: every target needs a kind; expected one of {expected}")
    try:
        model = kinds.get(str(kind)).target
    except kinds.UnknownKind:
        raise ConfigError(
            f"{path}: {where}.kind: unknown target kind {kind!r}; expected one of {', '.join(kinds.names())}"
        ) from None
    _refuse_inline_secrets(entry, path, where, model.secret_hint)
    try:
        return model.model_validate(entry)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, prefix=(where,), model=model)) from None


def _refuse_inline_secrets(node: Any, path: Path, where: str, hint: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if here == "targets":
                continue  # each target is checked with its own kind's hint
            if str(key).lower() in _INLINE_SECRET_KEYS and value not in (None, ""):
                raise ConfigError(f"{path}: {here}: secrets must not be written in the config; {hint}")
            _refuse_inline_secrets(value, path, here, hint)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _refuse_inline_secrets(item, path, f"{where}[{i}]", hint)


def _describe(
    exc: ValidationError, path: Path, prefix: tuple[str, ...] = (), model: type[Strict] | None = None
) -> str:
    """One line for the first problem: `file: key.path: what is expected`."""
    err = exc.errors()[0]
    loc = _location((*prefix, *err["loc"]))
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{path}: {loc}: unknown key"
    if kind == "missing":
        return f"{path}: {loc}: required key is missing"
    got = err.get("input")
    shown = f" (got {got!r})" if isinstance(got, (str, int, float, bool)) else ""
    if kind == "string_pattern_mismatch":
        return f"{path}: {loc}: expected {_expected(model, err['loc'])}{shown}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{path}: {loc}: {msg}{shown}"


def _expected(model: type[Strict] | None, loc: tuple[Any, ...]) -> str:
    """A pattern field's description in words (never the raw regex)."""
    field = model.model_fields.get(str(loc[0])) if model is not None and loc else None
    if field is not None and field.description:
        return field.description
    return "a value of the documented form"


def _location(loc: tuple[Any, ...]) -> str:
    """Render pydantic's loc as `targets[1].url`."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif isinstance(item, str) and item.startswith("targets["):
            parts.append(item)
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _resolve_paths(config: AuditConfig, base: Path) -> AuditConfig:
    def fix(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (base / p)

    return config.model_copy(
        update={
            "targets": [t.resolved(fix) for t in config.targets],
            "trusted_keys": [fix(k) for k in config.trusted_keys],
            "history_dir": fix(config.history_dir) if config.history_dir else None,
        }
    )
