"""Collector for `image-refs` targets: image references written in files.

Walks the configured files and folders and reports every image reference it
finds in Dockerfiles (`FROM`, `COPY --from`), Kubernetes manifests (any
`containers` / `initContainers` / `ephemeralContainers` list, so Pods,
Deployments, StatefulSets, Jobs and CronJobs alike), docker compose files
(`services.*.image`) and Pulumi stack files (`Pulumi.<stack>.yaml`: config
values under a key ending in `image`), each with its file and line.

It observes and normalizes only. A reference it cannot resolve (bad syntax,
a build argument with no default, a compose `${VAR}` set at deploy time) is
still reported, with `error` saying why, so the rules can say `error` at that
line instead of the reference silently disappearing. A candidate file that
cannot be read or parsed is listed in `unreadable`; only when nothing at all
could be read is the whole fact an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audits.collectors.base import CollectOptions
from audits.model import (
    IMAGE_REFERENCES,
    Fact,
    ImageReference,
    ImageReferencesFacts,
    TargetFacts,
    utcnow,
)
from audits.refs import InvalidReference, parse_reference
from audits.targets import ImageRefsTarget

SKIPPED_DIRS = frozenset({".git", "node_modules", ".venv", "__pycache__"})
MAX_FILE_BYTES = 8 * 1024 * 1024  # larger files are listed as unreadable, not parsed
CONTAINER_LIST_KEYS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_PROGRESS_EVERY = 500

_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it
_YAML_SUFFIXES = (".yaml", ".yml")
# A reference is at most a 255-character host[:port], a 255-character path, a
# 128-character tag and a 71-character digest (Distribution's reference limits).
MAX_REFERENCE_CHARS = 720
# A `$VAR`, `${VAR...}` or Helm/Go template left in a YAML value: filled in at deploy time.
_DEPLOY_TIME_VARIABLE = re.compile(r"(?<!\$)\$(?:\{[^}]*\}?|[A-Za-z_][A-Za-z0-9_]*)|\{\{.*?\}\}")


@dataclass
class _Scan:
    """What a walk accumulates; frozen into `ImageReferencesFacts` at the end."""

    references: list[ImageReference] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    files_scanned: int = 0


def collect(target: ImageRefsTarget, options: CollectOptions) -> TargetFacts:
    """Scan `target.paths`; the only fact is `IMAGE_REFERENCES`."""
    started = utcnow()
    paths = [Path(p).expanduser() for p in target.paths]
    source = "files: " + ", ".join(str(p) for p in paths)
    facts = scan_paths(paths, options)
    fact: Fact[ImageReferencesFacts]
    if facts.files_scanned == 0 and facts.unreadable:
        shown = "; ".join(facts.unreadable[:3])
        more = f" (and {len(facts.unreadable) - 3} more)" if len(facts.unreadable) > 3 else ""
        fact = Fact.error(f"no file could be read: {shown}{more}", source)
    else:
        fact = Fact.ok(facts, source)
    return TargetFacts(
        target=target.name,
        kind=target.kind,
        facts={IMAGE_REFERENCES: fact},
        started_at=started,
        finished_at=utcnow(),
    )


def scan_paths(paths: Sequence[Path], options: CollectOptions | None = None) -> ImageReferencesFacts:
    """Find image references under `paths` (files or folders).

    A file named explicitly is read even when its name is not a usual
    Dockerfile/YAML name: YAML by suffix, anything else as a Dockerfile.
    """
    scan = _Scan()
    for path in paths:
        if not path.exists():
            scan.unreadable.append(f"{path}: no such file or directory")
            continue
        for file, kind in _candidates(path):
            _scan_file(file, kind, scan)
            if options is not None and scan.files_scanned % _PROGRESS_EVERY == 0:
                options.report("files scanned", scan.files_scanned)
    if options is not None:
        options.report("files scanned", scan.files_scanned, scan.files_scanned)
    return ImageReferencesFacts(
        references=tuple(scan.references),
        files_scanned=scan.files_scanned,
        unreadable=tuple(scan.unreadable),
    )


# --------------------------------------------------------------------------
# Finding candidate files
# --------------------------------------------------------------------------


def _candidates(path: Path) -> Iterator[tuple[Path, str]]:
    """(file, "dockerfile" | "pulumi" | "yaml"), in a stable order."""
    if path.is_file():
        yield path, _classify(path.name) or (
            "yaml" if path.suffix.lower() in _YAML_SUFFIXES else "dockerfile"
        )
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            kind = _classify(name)
            if kind is not None:
                yield Path(root, name), kind


# `Dockerfile.*` names that are not Dockerfiles (ignore files, docs, templates, code).
_NOT_DOCKERFILE_SUFFIXES = (
    ".dockerignore", ".md", ".txt", ".json", ".py", ".go", ".sh", ".j2", ".jinja", ".tmpl", ".tpl",
    ".bak", ".orig", ".swp",
)


def _classify(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith((".dockerfile", ".containerfile")):
        return "dockerfile"
    if lower.startswith(("dockerfile", "containerfile")) and not lower.endswith(_NOT_DOCKERFILE_SUFFIXES):
        return "dockerfile"
    if not lower.endswith(_YAML_SUFFIXES):
        return None
    if name.startswith("Pulumi.") and name.count(".") >= 2:
        return "pulumi"
    return "yaml"


def _scan_file(file: Path, kind: str, scan: _Scan) -> None:
    text = _read_text(file, scan)
    if text is None:
        return
    scan.files_scanned += 1
    name = str(file)
    if kind == "dockerfile":
        scan.references.extend(dockerfile_references(text, name))
    elif "image" in text:  # cheap filter: most YAML in a repo names no image
        try:
            scan.references.extend(yaml_references(text, name, pulumi=kind == "pulumi"))
        except _YamlFileError as exc:
            scan.references.extend(exc.found)
            scan.unreadable.append(f"{name}: {exc.reason}")


def _read_text(file: Path, scan: _Scan) -> str | None:
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            scan.unreadable.append(f"{file}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
            return None
        data = file.read_bytes()
    except OSError as exc:
        scan.unreadable.append(f"{file}: {exc.strerror or type(exc).__name__}")
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        scan.unreadable.append(f"{file}: not UTF-8 text")
        return None


def _reference(raw: str, text: str, file: str, line: int, context: str) -> ImageReference:
    """Parse `text` (the resolved form of `raw`) into a fact, keeping a
    failure as an `error` reference."""
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        return _unresolved(raw, file, line, context, exc.reason)
    return ImageReference(
        raw=raw,
        file=file,
        line=line,
        registry=ref.registry,
        repository=ref.repository,
        tag=ref.tag,
        digest=ref.digest,
        explicit_scheme=ref.explicit_scheme,
        context=context,
    )


def _unresolved(raw: str, file: str, line: int, context: str, reason: str) -> ImageReference:
    return ImageReference(
        raw=raw,
        file=file,
        line=line,
        registry="",
        repository="",
        tag=None,
        digest=None,
        context=context,
        error=reason,
    )


# --------------------------------------------------------------------------
# Dockerfiles
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Instruction:
    line: int  # first physical line, 1-based
    keyword: str  # upper case
    args: str


class _Unresolved(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def dockerfile_references(text: str, file: str) -> list[ImageReference]:
    """Images a Dockerfile builds from: `FROM` (minus `scratch` and earlier
    stages) and `COPY --from=<image>`. Variables resolve against the global
    `ARG`s declared before the first `FROM`, as `docker build` without
    `--build-arg` would; a variable with no value is reported, not guessed."""
    found: list[ImageReference] = []
    global_args: dict[str, str | None] = {}
    stages: set[str] = set()
    seen_from = False
    for ins in _instructions(text):
        if ins.keyword == "ARG" and not seen_from:
            _declare_args(ins.args, global_args)
        elif ins.keyword == "FROM":
            seen_from = True
            ref = _from_reference(ins, global_args, stages, file)
            if ref is not None:
                found.append(ref)
        elif ins.keyword == "COPY":
            ref = _copy_from_reference(ins, stages, file)
            if ref is not None:
                found.append(ref)
    return found


def _from_reference(
    ins: _Instruction, args: dict[str, str | None], stages: set[str], file: str
) -> ImageReference | None:
    words = [w for w in ins.args.split() if not w.startswith("--")]
    if not words:
        return _unresolved(ins.args.strip(), file, ins.line, "dockerfile", "FROM without an image")
    written = words[0]
    if len(words) >= 3 and words[1].lower() == "as":
        stages.add(words[2].lower())
    try:
        image = _expand(written, args)
    except _Unresolved as exc:
        return _unresolved(written, file, ins.line, "dockerfile", exc.reason)
    if image.lower() == "scratch" or image.lower() in stages - _stage_named_by(words):
        return None
    return _reference(written, image, file, ins.line, "dockerfile")


def _stage_named_by(words: list[str]) -> set[str]:
    """The stage a FROM line declares does not count as an earlier stage for
    its own image (`FROM app AS app` pulls the image `app`)."""
    return {words[2].lower()} if len(words) >= 3 and words[1].lower() == "as" else set()


def _copy_from_reference(ins: _Instruction, stages: set[str], file: str) -> ImageReference | None:
    for word in ins.args.split():
        if not word.startswith("--from="):
            continue
        source = word.removeprefix("--from=")
        if not source or source.isdigit() or source.lower() in stages or "$" in source:
            return None  # a stage by name or index; variables here use stage-local ARGs
        return _reference(source, source, file, ins.line, "dockerfile")
    return None


def _declare_args(args: str, scope: dict[str, str | None]) -> None:
    """`ARG A=1 B="two" C`: defaults may use earlier ARGs; no default is None."""
    for word in _split_arg_words(args):
        name, eq, default = word.partition("=")
        if not eq:
            scope.setdefault(name, None)
            continue
        try:
            scope[name] = _expand(_unquote(default), scope)
        except _Unresolved:
            scope[name] = None


def _split_arg_words(args: str) -> list[str]:
    words: list[str] = []
    current = ""
    quote = ""
    for ch in args.strip():
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current += ch
        elif ch.isspace():
            if current:
                words.append(current)
            current = ""
        else:
            current += ch
    if current:
        words.append(current)
    return words


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand(word: str, scope: dict[str, str | None]) -> str:
    """Dockerfile word expansion for `$VAR`, `${VAR}`, `${VAR:-word}` and
    `${VAR:+word}`. A variable without a value raises `_Unresolved`."""
    out: list[str] = []
    i = 0
    while i < len(word):
        ch = word[i]
        if ch == "\\" and word[i + 1 : i + 2] == "$":
            out.append("$")
            i += 2
        elif ch == "$" and word[i + 1 : i + 2] == "{":
            end = _closing_brace(word, i + 2)
            if end == -1:
                raise _Unresolved(f"unterminated '${{' in {word!r}")
            out.append(_expand_braced(word[i + 2 : end], scope))
            i = end + 1
        elif ch == "$" and (match := _VAR_NAME.match(word, i + 1)):
            out.append(_value_of(match.group(0), scope))
            i = match.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _closing_brace(word: str, start: int) -> int:
    depth = 1
    for j in range(start, len(word)):
        if word[j] == "{":
            depth += 1
        elif word[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _expand_braced(body: str, scope: dict[str, str | None]) -> str:
    match = _VAR_NAME.match(body)
    if match is None:
        raise _Unresolved(f"unsupported substitution '${{{body}}}'")
    name, rest = match.group(0), body[match.end() :]
    if not rest:
        return _value_of(name, scope)
    value = scope.get(name)
    if rest.startswith(":-"):
        return value if value else _expand(rest[2:], scope)
    if rest.startswith(":+"):
        return _expand(rest[2:], scope) if value else ""
    raise _Unresolved(f"unsupported substitution '${{{body}}}'")


def _value_of(name: str, scope: dict[str, str | None]) -> str:
    if name not in scope:
        raise _Unresolved(f"${name} is not declared by an ARG before the first FROM")
    value = scope[name]
    if not value:
        raise _Unresolved(f"ARG {name} has no default (it must come from --build-arg)")
    return value


_DIRECTIVE = re.compile(r"#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def _instructions(text: str) -> Iterator[_Instruction]:
    """Logical instructions with their first line: parser directives (only
    `escape`), comments, line continuations and heredoc bodies handled."""
    lines = text.splitlines()
    escape, i = _directives(lines)
    while i < len(lines):
        start = i
        logical = lines[i].strip()
        i += 1
        if not logical or logical.startswith("#"):
            continue
        while logical.endswith(escape) and i < len(lines):
            logical = logical[: -len(escape)]
            while i < len(lines) and _is_blank_or_comment(lines[i]):
                i += 1  # Docker drops comments and blank lines inside a continuation
            if i < len(lines):
                logical += lines[i].rstrip()
                i += 1
        keyword, _, args = logical.replace("\t", " ").partition(" ")
        keyword = keyword.upper()
        if keyword in {"RUN", "COPY", "ADD"}:
            i = _skip_heredocs(logical, lines, i)
        yield _Instruction(start + 1, keyword, args)


def _is_blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _directives(lines: list[str]) -> tuple[str, int]:
    """Parser directives sit at the very top; returns (escape char, first line after)."""
    escape = "\\"
    i = 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i].strip())
        if match is None:
            break
        if match.group(1).lower() == "escape" and match.group(2) in {"\\", "`"}:
            escape = match.group(2)
        i += 1
    return escape, i


def _skip_heredocs(logical: str, lines: list[str], i: int) -> int:
    for match in _HEREDOC.finditer(logical):
        strip_tabs, terminator = match.group(1) == "-", match.group(3)
        while i < len(lines):
            body = lines[i].lstrip("\t") if strip_tabs else lines[i]
            i += 1
            if body == terminator:
                break
    return i


# --------------------------------------------------------------------------
# YAML: Kubernetes, compose, Pulumi stacks
# --------------------------------------------------------------------------


class _YamlFileError(Exception):
    def __init__(self, reason: str, found: list[ImageReference]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.found = found


def yaml_references(text: str, file: str, *, pulumi: bool = False) -> list[ImageReference]:
    """References in every YAML document of `text`, each with its line.

    Raises `_YamlFileError` (carrying what earlier documents yielded) when
    the text is not YAML.
    """
    found: list[ImageReference] = []
    try:
        for doc in yaml.compose_all(text, Loader=_YamlLoader):
            if doc is not None:
                found.extend(_document_references(doc, file, pulumi))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise _YamlFileError(f"not valid YAML{where}", found) from None
    except RecursionError:  # the pure-Python composer recurses per nesting level
        raise _YamlFileError("YAML nested too deeply", found) from None
    return found


def _document_references(doc: yaml.Node, file: str, pulumi: bool) -> list[ImageReference]:
    if pulumi:
        config = _get(doc, "config")
        return [] if config is None else _keyed_image_values(config, file)
    services = _get(doc, "services")
    if isinstance(services, yaml.MappingNode) and _get(doc, "kind") is None:
        return _compose_references(services, file)
    return _container_images(doc, file)


def _get(node: yaml.Node, key: str) -> yaml.Node | None:
    """`node[key]` for a mapping node, following `<<` merge keys."""
    if not isinstance(node, yaml.MappingNode):
        return None
    merged: list[yaml.Node] = []
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode):
            if k.value == key:
                return v  # type: ignore[no-any-return]
            if k.value == "<<" and k.tag == "tag:yaml.org,2002:merge":
                merged.extend(v.value if isinstance(v, yaml.SequenceNode) else [v])
    for m in merged:
        found = _get(m, key)
        if found is not None:
            return found
    return None


def _walk(root: yaml.Node) -> Iterator[yaml.Node]:
    """Every node once (aliases share nodes), iteratively: deep YAML cannot
    exhaust the stack."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, yaml.MappingNode):
            for k, v in reversed(node.value):
                stack.extend((v, k))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))


def _container_images(doc: yaml.Node, file: str) -> list[ImageReference]:
    """Kubernetes: `image` of every item of a containers-like list, wherever
    the list sits (Pod spec, Deployment template, CronJob job template...)."""
    found: list[ImageReference] = []
    for node in _walk(doc):
        if not isinstance(node, yaml.MappingNode):
            continue
        for k, v in node.value:
            if (
                isinstance(k, yaml.ScalarNode)
                and k.value in CONTAINER_LIST_KEYS
                and isinstance(v, yaml.SequenceNode)
            ):
                for item in v.value:
                    found.extend(_image_value(_get(item, "image"), file, "kubernetes"))
    return found


def _compose_references(services: yaml.MappingNode, file: str) -> list[ImageReference]:
    found: list[ImageReference] = []
    for _, service in services.value:
        found.extend(_image_value(_get(service, "image"), file, "compose"))
    return found


def _keyed_image_values(config: yaml.Node, file: str) -> list[ImageReference]:
    """Pulumi stack config: any scalar under a key ending in `image`
    (`app:image`, `web:baseImage`, nested structured config alike)."""
    found: list[ImageReference] = []
    for node in _walk(config):
        if not isinstance(node, yaml.MappingNode):
            continue
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value.rsplit(":", 1)[-1].lower().endswith("image"):
                found.extend(_image_value(v, file, "pulumi"))
    return found


def _image_value(node: yaml.Node | None, file: str, context: str) -> Iterable[ImageReference]:
    """A scalar image value as a reference; nulls and non-scalars are not
    references and yield nothing."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        return ()
    raw = str(node.value)
    line = node.start_mark.line + 1
    if len(raw) > MAX_REFERENCE_CHARS:
        # Nothing this long is an image reference; and the variable search below is
        # only cheap on values of a reference's size (it backtracks on `{{{{...`).
        reason = f"{len(raw)} characters: longer than any image reference ({MAX_REFERENCE_CHARS})"
        return (_unresolved(raw[:MAX_REFERENCE_CHARS] + "…", file, line, context, reason),)
    variable = _DEPLOY_TIME_VARIABLE.search(raw)
    if variable is not None:
        reason = f"contains {variable.group(0)!r}, filled in at deploy time"
        return (_unresolved(raw, file, line, context, reason),)
    return (_reference(raw, raw, file, line, context),)
