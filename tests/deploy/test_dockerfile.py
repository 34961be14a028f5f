"""The Dockerfile, read as Docker would (it cannot be built here): stages, user, port,
health check, command and build context."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

from app.cli.main import build_parser
from app.cli.serve import cmd_serve
from app.db.local_pair import free_port
from app.soap import contract
from tests.deploy.deploy_files import (
    COMPOSE_FILE,
    REPO,
    app_serves,
    app_settings_env,
    k8s_objects,
    load_yaml,
)

Instruction = tuple[str, str]


def instructions() -> list[list[Instruction]]:
    """The Dockerfile's instructions (keyword, arguments), one list per stage."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    stages: list[list[Instruction]] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        assert stages, "the Dockerfile starts with FROM"
        stages[-1].append((keyword.upper(), " ".join(arguments.split())))
    return stages


def final(keyword: str) -> list[str]:
    return [arguments for kw, arguments in instructions()[-1] if kw == keyword]


def exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), f"exec form expected: {arguments}"
    return [str(part) for part in parsed]


def env_of(arguments: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in arguments:
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            found[key] = value
    return found


def test_multi_stage_build_ends_on_python_slim() -> None:
    stages = instructions()
    assert len(stages) >= 2
    assert re.fullmatch(r"python:3\.11-slim AS builder", stages[0][0][1], re.I)
    assert stages[-1][0][1] == "python:3.11-slim"
    copies = final("COPY")
    assert any(c.startswith("--from=builder ") for c in copies), "the venv comes from the builder"
    assert not any(kw == "RUN" and "pip install" in a for kw, a in instructions()[-1])


def test_runs_as_the_same_non_root_user_as_in_kubernetes() -> None:
    (user,) = final("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric, non-root user (runAsNonRoot checks it)"
    pod = k8s_objects()[("Deployment", "ssogw")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["runAsGroup"] == int(gid or uid)


def test_one_port_everywhere() -> None:
    (exposed,) = final("EXPOSE")
    port = int(exposed)
    assert env_of(final("ENV"))["SSOGW_HTTP_PORT"] == str(port)
    container = k8s_objects()[("Deployment", "ssogw")]["spec"]["template"]["spec"]["containers"][0]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    app_ports = load_yaml(COMPOSE_FILE)["services"]["app"]["ports"]
    assert [int(p.rsplit(":", 1)[1]) for p in app_ports] == [port]


def test_serves_a_worker_per_cpu_given_on_every_interface_with_known_settings() -> None:
    (entrypoint,) = final("ENTRYPOINT")
    (cmd,) = final("CMD")
    argv = exec_form(entrypoint) + exec_form(cmd)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv[0] in scripts, "the console script of the project"
    args = build_parser().parse_args(argv[1:])
    assert args.handler is cmd_serve
    assert "0.0.0.0" in {args.host, env_of(final("ENV")).get("SSOGW_HTTP_HOST")}
    # The number of workers comes from the CPUs the container is given, never the image.
    assert "--workers" not in argv and "SSOGW_HTTP_WORKERS" not in env_of(final("ENV"))
    ssogw_env = {k for k in env_of(final("ENV")) if k.startswith("SSOGW_")}
    assert ssogw_env <= app_settings_env(), "every SSOGW_* variable is a real setting"


def test_the_health_check_asks_livez() -> None:
    (check,) = final("HEALTHCHECK")
    assert "/livez" in check and "curl" not in check
    assert app_serves("/livez")


def test_the_build_context_holds_what_the_image_copies() -> None:
    ignore = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(name: str) -> bool:
        verdict = False
        for pattern in ignore:
            negated = pattern.startswith("!")
            if fnmatch(name, pattern.lstrip("!").rstrip("/")):
                verdict = not negated
        return verdict

    sources = set()
    for stage in instructions():
        for keyword, arguments in stage:
            if keyword == "COPY" and not arguments.startswith("--from"):
                sources.update(arguments.split()[:-1])
    for source in sources:
        assert (REPO / source).exists(), source
        assert not ignored(Path(source).parts[0]), f"{source} is excluded by .dockerignore"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["readme"] in sources, "setuptools reads the readme while installing"
    # The SOAP contract is read from the source tree, beside app/.
    assert str(contract.DEFAULT_CONTRACT_DIR.relative_to(REPO)) in sources
    for local in (".venv", ".data", ".git", "tests", "bench", ".mypy_cache"):
        assert ignored(local), f"{local} must stay out of the build context"


def health_check_exit_code(port: int) -> int:
    """Run the HEALTHCHECK's command as Docker would (sh -c), against ``port``."""
    (check,) = final("HEALTHCHECK")
    command = check.split(" CMD ", 1)[1]
    env = {
        **os.environ,
        "SSOGW_HTTP_PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["sh", "-c", command], env=env, timeout=10, capture_output=True, check=False
    )
    return done.returncode


@pytest.mark.db
def test_the_health_check_passes_on_a_live_app_and_fails_without_one(live_url: str) -> None:
    port = int(live_url.rsplit(":", 1)[1])
    assert health_check_exit_code(port) == 0
    assert health_check_exit_code(free_port()) != 0
