"""The image-refs collector on a realistic repository tree (fixtures under
tests/fixtures/refs/repo) and on edge cases built in tmp_path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from audits.collectors import image_refs
from audits.collectors.base import CollectOptions
from audits.collectors.image_refs import collect, dockerfile_references, scan_paths, yaml_references
from audits.model import IMAGE_REFERENCES, FactState, ImageReference, ImageReferencesFacts
from audits.targets import ImageRefsTarget

REPO = Path(__file__).resolve().parents[1] / "fixtures" / "refs" / "repo"
PINNED = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def _canonical(ref: ImageReference) -> str:
    text = f"{ref.registry}/{ref.repository}"
    text += f":{ref.tag}" if ref.tag else ""
    text += f"@{ref.digest}" if ref.digest else ""
    return text


def _by_location(facts: ImageReferencesFacts) -> dict[tuple[str, int], ImageReference]:
    return {(str(Path(r.file).relative_to(REPO)), r.line): r for r in facts.references}


@pytest.fixture(scope="module")
def repo_facts() -> ImageReferencesFacts:
    return scan_paths([REPO])


def test_repository_tree_yields_every_reference_with_file_and_line(repo_facts: ImageReferencesFacts) -> None:
    found = {
        loc: (ref.context, _canonical(ref) if ref.error is None else f"error: {ref.error}")
        for loc, ref in _by_location(repo_facts).items()
    }
    assert found == {
        ("Dockerfile", 7): ("dockerfile", "docker.io/library/golang:1.22-alpine"),
        ("Dockerfile", 20): ("dockerfile", f"registry.example.com:443/platform/base:v3@{PINNED}"),
        ("Dockerfile", 24): ("dockerfile", "docker.io/library/nginx:latest"),
        ("Dockerfile", 28): ("dockerfile", "docker.io/library/alpine"),
        ("services/api/Dockerfile.prod", 2): (
            "dockerfile",
            "error: ARG BASE_IMAGE has no default (it must come from --build-arg)",
        ),
        ("services/api/Dockerfile.prod", 3): ("dockerfile", "docker.io/library/python:3.12-slim"),
        ("services/api/Dockerfile.prod", 4): ("dockerfile", "10.0.0.5:5000/team/api:1.4.0"),
        ("services/web/web.dockerfile", 2): ("dockerfile", "mcr.microsoft.com/windows/servercore:ltsc2022"),
        ("services/web/web.dockerfile", 4): ("dockerfile", "error: repository name must be lowercase"),
        ("k8s/deployment.yaml", 10): ("kubernetes", "registry.example.com/team/api-migrate:1.4.0"),
        ("k8s/deployment.yaml", 13): ("kubernetes", "registry.example.com/team/api:latest"),
        ("k8s/deployment.yaml", 15): ("kubernetes", "docker.io/envoyproxy/envoy"),
        ("k8s/deployment.yaml", 31): ("kubernetes", "docker.io/library/busybox:1.36"),
        ("k8s/deployment.yaml", 34): ("kubernetes", "localhost:5000/tools/debug:dev"),
        ("k8s/cronjob.yaml", 13): ("kubernetes", "ghcr.io/acme/report@sha256:" + "abcdef" * 10 + "abcd"),
        ("k8s/broken.yaml", 6): ("kubernetes", "docker.io/library/redis:7.2"),
        ("docker-compose.yml", 2): ("compose", "docker.io/library/postgres:16"),
        ("docker-compose.yml", 9): ("compose", "docker.io/library/redis"),
        ("docker-compose.yml", 13): ("compose", "error: contains '${TAG}', filled in at deploy time"),
        ("docker-compose.yml", 15): ("compose", "error: repository name must be lowercase"),
        ("stacks/Pulumi.prod.yaml", 3): ("pulumi", "registry.example.com/team/app:2.0.1"),
        ("stacks/Pulumi.prod.yaml", 4): ("pulumi", "192.168.1.20:5000/sidecar"),
        ("stacks/Pulumi.prod.yaml", 7): ("pulumi", "docker.io/library/nginx:1.27"),
    }


def test_raw_text_is_kept_as_written(repo_facts: ImageReferencesFacts) -> None:
    refs = _by_location(repo_facts)
    assert refs[("Dockerfile", 7)].raw == "golang:${GO_VERSION}-alpine"
    assert refs[("k8s/deployment.yaml", 13)].raw == "registry.example.com/team/api:latest"
    assert refs[("docker-compose.yml", 15)].raw == "Team/Legacy:1"
    assert refs[("docker-compose.yml", 15)].registry == ""


def test_explicit_http_scheme_is_recorded(repo_facts: ImageReferencesFacts) -> None:
    schemes = {r.explicit_scheme for r in repo_facts.references}
    assert schemes == {None, "http"}
    assert _by_location(repo_facts)[("services/api/Dockerfile.prod", 4)].explicit_scheme == "http"


def test_skipped_folders_and_unrelated_files_are_not_scanned(repo_facts: ImageReferencesFacts) -> None:
    files = {Path(r.file).relative_to(REPO).parts[0] for r in repo_facts.references}
    assert "node_modules" not in files and "docs" not in files
    # Dockerfile x3, k8s x3, compose, two Pulumi files: README-like files are not candidates
    assert repo_facts.files_scanned == 9


def test_broken_yaml_keeps_earlier_documents_and_lists_the_file(repo_facts: ImageReferencesFacts) -> None:
    assert repo_facts.unreadable == (f"{REPO / 'k8s' / 'broken.yaml'}: not valid YAML at line 11",)


def test_collect_wraps_the_scan_in_one_ok_fact() -> None:
    target = ImageRefsTarget(name="manifests", kind="image-refs", paths=[REPO / "k8s", REPO / "Dockerfile"])
    result = collect(target, CollectOptions())
    assert (result.target, result.kind, set(result.facts)) == ("manifests", "image-refs", {IMAGE_REFERENCES})
    fact = result.facts[IMAGE_REFERENCES]
    assert fact.state is FactState.OK
    assert str(REPO / "k8s") in fact.source
    assert fact.value.files_scanned == 4
    assert {r.context for r in fact.value.references} == {"kubernetes", "dockerfile"}


def test_collect_is_an_error_only_when_nothing_could_be_read(tmp_path: Path) -> None:
    missing = ImageRefsTarget(name="m", kind="image-refs", paths=[tmp_path / "nope"])
    fact = collect(missing, CollectOptions()).facts[IMAGE_REFERENCES]
    assert fact.state is FactState.ERROR
    assert fact.detail == f"no file could be read: {tmp_path / 'nope'}: no such file or directory"

    (tmp_path / "Dockerfile").write_text("FROM alpine:3.20\n")
    partly = ImageRefsTarget(name="m", kind="image-refs", paths=[tmp_path / "nope", tmp_path])
    fact = collect(partly, CollectOptions()).facts[IMAGE_REFERENCES]
    assert fact.state is FactState.OK
    assert len(fact.value.references) == 1
    assert fact.value.unreadable == (f"{tmp_path / 'nope'}: no such file or directory",)


def test_empty_folder_is_ok_with_nothing_found(tmp_path: Path) -> None:
    fact = collect(ImageRefsTarget(name="e", kind="image-refs", paths=[tmp_path]), CollectOptions())
    value = fact.facts[IMAGE_REFERENCES].value
    assert (value.references, value.files_scanned, value.unreadable) == ((), 0, ())


def test_git_venv_node_modules_are_skipped(tmp_path: Path) -> None:
    for folder in (".git", ".venv", "node_modules", "src"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "Dockerfile").write_text(f"FROM {folder.strip('.')}-image:1\n")
    facts = scan_paths([tmp_path])
    assert [r.repository for r in facts.references] == ["library/src-image"]


def test_dockerfile_names(tmp_path: Path) -> None:
    names = ["Dockerfile", "Dockerfile.prod", "Dockerfile-dev", "api.Dockerfile", "Containerfile",
             "dockerfile", "Dockerfile.dockerignore", "Dockerfile.j2", "dockerfile_test.go", "README.md"]
    for name in names:
        (tmp_path / name).write_text(f"FROM {name.lower().replace('.', '-').replace('_', '-')}:1\n")
    found = sorted(r.repository for r in scan_paths([tmp_path]).references)
    assert found == [
        "library/api-dockerfile",
        "library/containerfile",
        "library/dockerfile",
        "library/dockerfile",
        "library/dockerfile-dev",
        "library/dockerfile-prod",
    ]


def test_explicit_file_with_unusual_name_is_read_as_dockerfile(tmp_path: Path) -> None:
    odd = tmp_path / "build.docker"
    odd.write_text("FROM alpine:3.20\n")
    assert [r.repository for r in scan_paths([odd]).references] == ["library/alpine"]
    assert scan_paths([tmp_path]).files_scanned == 0  # not a candidate when walking a folder


def test_unreadable_and_binary_files_are_listed_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_bytes(b"FROM \xff\xfe\n")
    (tmp_path / "k8s.yaml").write_text("containers:\n  - image: nginx:1\n")
    facts = scan_paths([tmp_path])
    assert facts.unreadable == (f"{tmp_path / 'Dockerfile'}: not UTF-8 text",)
    assert [r.repository for r in facts.references] == ["library/nginx"]


def test_progress_is_reported() -> None:
    seen: list[tuple[str, int, int | None]] = []
    scan_paths([REPO], CollectOptions(progress=lambda what, done, total: seen.append((what, done, total))))
    assert seen[-1] == ("files scanned", 9, 9)


# ---------------------------------------------------------------------------
# Dockerfile details
# ---------------------------------------------------------------------------


def _dockerfile(text: str) -> list[tuple[int, str]]:
    return [
        (r.line, _canonical(r) if r.error is None else f"error: {r.error}")
        for r in dockerfile_references(text, "Dockerfile")
    ]


def test_stage_names_are_case_insensitive_and_scratch_is_skipped() -> None:
    text = "FROM alpine AS Builder\nFROM builder\nFROM SCRATCH\nFROM app AS app\n"
    assert _dockerfile(text) == [(1, "docker.io/library/alpine"), (4, "docker.io/library/app")]


def test_args_after_first_from_do_not_reach_later_from_lines() -> None:
    text = "FROM alpine\nARG LATE=nginx\nFROM $LATE\n"
    assert _dockerfile(text) == [
        (1, "docker.io/library/alpine"),
        (3, "error: $LATE is not declared by an ARG before the first FROM"),
    ]


def test_arg_forms_and_substitutions() -> None:
    text = (
        'ARG A=one B="two" C\n'
        "ARG REF=${A}/${B}\n"
        "FROM $REF:1\n"
        "FROM ${C:-fallback}:2\n"
        "FROM x${C:+never}:3\n"
        "FROM ${A:+plus}:4\n"
        "FROM ${A%%suffix}\n"
        "FROM ${A\n"
    )
    assert _dockerfile(text) == [
        (3, "docker.io/one/two:1"),
        (4, "docker.io/library/fallback:2"),
        (5, "docker.io/library/x:3"),
        (6, "docker.io/library/plus:4"),
        (7, "error: unsupported substitution '${A%%suffix}'"),
        (8, "error: unterminated '${' in '${A'"),
    ]


def test_continuations_comments_and_tabs() -> None:
    text = "FROM \\\n  # note\n\n  ghcr.io/acme/app:1 \\\n  AS x\nFROM\tbusybox\n"
    assert _dockerfile(text) == [(1, "ghcr.io/acme/app:1"), (6, "docker.io/library/busybox")]


def test_heredoc_bodies_are_not_instructions() -> None:
    text = (
        "FROM alpine\nRUN <<-'EOF' bash\n\tFROM fake:1\n\tEOF\n"
        "COPY <<A <<B /x\nFROM fake:2\nA\nFROM fake:3\nB\nFROM real:4\n"
    )
    assert _dockerfile(text) == [(1, "docker.io/library/alpine"), (10, "docker.io/library/real:4")]


def test_copy_from_an_image_is_a_reference_but_from_a_stage_is_not() -> None:
    text = (
        "FROM golang:1.22 AS build\nCOPY --from=build /a /a\n"
        "COPY --from=0 /a /a\nCOPY --from=busybox:1.36 /bin/sh /sh\n"
    )
    assert _dockerfile(text) == [(1, "docker.io/library/golang:1.22"), (4, "docker.io/library/busybox:1.36")]


def test_from_without_image_is_an_error() -> None:
    assert _dockerfile("FROM --platform=linux/amd64\n") == [(1, "error: FROM without an image")]


# ---------------------------------------------------------------------------
# YAML details
# ---------------------------------------------------------------------------


def _yaml(text: str, pulumi: bool = False) -> list[tuple[int, str, str]]:
    return [
        (r.line, r.context, _canonical(r) if r.error is None else f"error: {r.error}")
        for r in yaml_references(text, "x.yaml", pulumi=pulumi)
    ]


def test_kubernetes_list_and_aliases_and_nulls() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - kind: Pod\n    spec:\n      containers:\n"
        "        - &c {name: a, image: 'nginx:1'}\n"
        "        - {name: b, image: null}\n"
        "        - {name: c, image: {not: scalar}}\n"
        "  - kind: Pod\n    spec:\n      containers: [*c]\n"
    )
    assert _yaml(text) == [(7, "kubernetes", "docker.io/library/nginx:1")] * 2


def test_helm_template_value_is_unresolved() -> None:
    text = "containers:\n  - image: '{{ .Values.image }}'\n"
    assert _yaml(text) == [(2, "kubernetes", "error: contains '{{ .Values.image }}', filled in at deploy time")]


def test_compose_dollar_escape_is_literal_not_a_variable() -> None:
    text = "services:\n  a:\n    image: 'x$$y:1'\n"
    [(line, context, outcome)] = _yaml(text)
    assert (line, context) == (3, "compose")
    assert outcome.startswith("error: repository 'library/x$$y' must be lowercase letters")


def test_compose_merge_sequence_and_document_with_kind_is_not_compose() -> None:
    text = (
        "x: &base {image: 'alpine:3'}\n"
        "services:\n  a:\n    <<: [*base]\n"
        "---\n"
        "kind: Thing\nservices: {b: {image: 'ignored:1'}}\n"
    )
    assert _yaml(text) == [(1, "compose", "docker.io/library/alpine:3")]


def test_pulumi_only_reads_the_config_section() -> None:
    text = "config:\n  p:Image: nginx\n  p:list:\n    - image: busybox\nimage: not-config\n"
    assert _yaml(text, pulumi=True) == [
        (2, "pulumi", "docker.io/library/nginx"),
        (4, "pulumi", "docker.io/library/busybox"),
    ]


def test_deep_nesting_is_walked_or_refused_cleanly(tmp_path: Path) -> None:
    def nested(depth: int) -> str:
        return "[" * depth + "{containers: [{image: alpine}]}" + "]" * depth

    assert _yaml(nested(500)) == [(1, "kubernetes", "docker.io/library/alpine")]
    (tmp_path / "deep.yaml").write_text(nested(20000))
    facts = scan_paths([tmp_path])
    assert facts.references == ()
    assert len(facts.unreadable) == 1 and facts.unreadable[0].startswith(f"{tmp_path / 'deep.yaml'}: ")


def test_deep_nesting_with_the_pure_python_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_refs, "_YamlLoader", yaml.SafeLoader)  # no libyaml
    (tmp_path / "deep.yaml").write_text("[" * 600 + "{image: x}" + "]" * 600)
    assert scan_paths([tmp_path]).unreadable == (f"{tmp_path / 'deep.yaml'}: YAML nested too deeply",)


def test_thousands_of_files_per_second(tmp_path: Path) -> None:
    manifest = (REPO / "k8s" / "deployment.yaml").read_text()
    dockerfile = (REPO / "Dockerfile").read_text()
    for i in range(300):
        (tmp_path / f"m{i}.yaml").write_text(manifest)
        (tmp_path / f"Dockerfile.{i}").write_text(dockerfile)
        (tmp_path / f"values{i}.yml").write_text("replicas: 3\nresources: {cpu: 1}\n" * 10)
    started = time.process_time()  # CPU time: other work on the machine does not count
    facts = scan_paths([tmp_path])
    elapsed = time.process_time() - started
    assert facts.files_scanned == 900
    assert len(facts.references) == 300 * 5 + 300 * 4
    assert facts.files_scanned / elapsed > 1000, f"{facts.files_scanned / elapsed:.0f} files/s"


def test_a_huge_templated_image_value_is_refused_in_linear_time() -> None:
    """A 40 KB `{{{{...` value made the deploy-time-variable search take seconds."""
    import time

    value = "{" * 40_000
    text = f"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: a\n      image: '{value}'\n"
    started = time.monotonic()
    (ref,) = yaml_references(text, "pod.yaml")
    assert time.monotonic() - started < 0.5
    assert ref.error and "longer than any image reference" in ref.error and len(ref.raw) <= 721
