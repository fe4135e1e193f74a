"""supervisord.conf (``make run``) and docker-compose.yml run the same processes.

Both files are read as their tools read them: supervisord's ini expands
``%(name)s`` and ``%%`` exactly as configparser's basic interpolation does, and
compose's YAML merges the ``x-app`` anchor (PyYAML's safe loader does too).
"""

import configparser
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from celery.bin.base import CLIContext
from celery.bin.worker import worker as worker_command
from django.conf import settings

from tests.fresh_python import printed
from voiceproj.celery import ALL_QUEUES
from voiceproj.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]
# What supervisord expands in supervisord.conf; the ENV_ values are the Makefile's defaults.
EXPANSIONS = {
    "here": str(ROOT),
    "ENV_PORT": "8000",
    "ENV_FLOWER_PORT": "5555",
    "ENV_RUN_DIR": str(ROOT / ".run"),
}
# Compose services that are infrastructure, not processes of the platform.
INFRASTRUCTURE = {"postgres", "redis"}
# The supervision policy every program must share (supervisord.conf explains each value).
POLICY = {
    "directory": str(ROOT),
    "autorestart": "true",
    "startsecs": "2",
    "startretries": "10",
    "stopwaitsecs": "10",
    "stopasgroup": "false",
    "killasgroup": "true",
    "redirect_stderr": "true",
    "stdout_logfile": "/dev/stdout",
    "stdout_logfile_maxbytes": "0",
}


def supervisord_config() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(defaults=EXPANSIONS)
    parser.read(ROOT / "supervisord.conf")
    return parser


def supervisord_programs() -> dict[str, configparser.SectionProxy]:
    parser = supervisord_config()
    return {
        name.removeprefix("program:"): parser[name]
        for name in parser.sections()
        if name.startswith("program:")
    }


def supervisord_commands() -> dict[str, list[str]]:
    return {
        name: shlex.split(section["command"]) for name, section in supervisord_programs().items()
    }


def compose_services() -> dict[str, dict]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: spec for name, spec in services.items() if name not in INFRASTRUCTURE}


def compose_commands() -> dict[str, list[str]]:
    """Each service's process; ``sh -c "setup && exec CMD"`` counts as CMD."""
    commands = {}
    for name, spec in compose_services().items():
        argv = spec["command"]
        if argv[:2] == ["sh", "-c"]:
            argv = shlex.split(argv[2].split("&&")[-1])
            argv = argv[1:] if argv[0] == "exec" else argv
        commands[name] = argv
    return commands


def option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def celery_command(argv: list[str]) -> str | None:
    """``worker`` / ``beat`` / ``flower`` for a ``celery -A voiceproj ...`` command line."""
    if Path(argv[0]).name != "celery":
        return None
    return next(arg for arg in argv[1:] if not arg.startswith("-") and arg != "voiceproj")


BOTH = pytest.mark.parametrize(
    "commands", [supervisord_commands, compose_commands], ids=["supervisord", "compose"]
)


def test_both_run_the_same_processes() -> None:
    assert set(supervisord_commands()) == set(compose_commands())


@BOTH
def test_each_queue_has_exactly_one_worker(commands) -> None:
    consumers = {
        name: option(argv, "-Q").split(",")
        for name, argv in commands().items()
        if celery_command(argv) == "worker"
    }
    for queue in ALL_QUEUES:
        assert [name for name, queues in consumers.items() if queue in queues] == [queue]
    assert sorted(q for queues in consumers.values() for q in queues) == sorted(ALL_QUEUES)


def test_workers_use_the_same_pool_and_concurrency_in_both() -> None:
    supervised, composed = supervisord_commands(), compose_commands()
    for queue in ALL_QUEUES:
        for flag in ("-P", "-c", "-n"):
            assert option(supervised[queue], flag) == option(composed[queue], flag), (queue, flag)


@BOTH
def test_every_worker_sends_the_task_events_flower_shows(commands) -> None:
    """Each worker's command line as Celery's own parser reads it: without -E,
    the app's worker_send_task_events decides, as the worker itself does."""
    cli = CLIContext(app=celery_app, no_color=True, workdir=None)
    for name, argv in commands().items():
        if celery_command(argv) == "worker":
            args = argv[argv.index("worker") + 1 :]
            task_events = worker_command.make_context("worker", args, obj=cli).params["task_events"]
            assert celery_app.either("worker_send_task_events", task_events), name


@BOTH
def test_one_beat_and_no_worker_runs_an_embedded_one(commands) -> None:
    argvs = commands().values()
    assert sum(celery_command(argv) == "beat" for argv in argvs) == 1
    assert not [argv for argv in argvs if "-B" in argv or "--beat" in argv]


def test_compose_runs_a_single_beat_replica() -> None:
    assert compose_services()["beat"]["deploy"]["replicas"] == 1


@BOTH
def test_web_runs_daphne_through_voiceproj_serve(commands) -> None:
    argv = commands()["web"]
    assert argv[1:3] == ["-m", "voiceproj.serve"]
    assert argv[-1] == "voiceproj.asgi:application"


def test_every_program_is_in_the_one_group() -> None:
    parser = supervisord_config()
    groups = [name for name in parser.sections() if name.startswith("group:")]
    assert groups == ["group:voice"]
    assert sorted(parser["group:voice"]["programs"].split(",")) == sorted(supervisord_programs())


def test_every_program_is_supervised_alike() -> None:
    for name, section in supervisord_programs().items():
        assert {key: section.get(key) for key in POLICY} == POLICY, name


def test_every_compose_service_restarts() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, spec in services.items():
        assert spec.get("restart") == "unless-stopped", name


# `${NAME:?message}`: compose refuses to start while NAME is unset or empty.
REQUIRED_VARIABLE = re.compile(r"^\$\{(?P<name>\w+):\?[^}]+\}$")


def app_environments() -> dict[str, dict[str, str]]:
    return {name: spec["environment"] for name, spec in compose_services().items()}


def test_compose_runs_production_settings_with_a_required_secret_key() -> None:
    for name, environment in app_environments().items():
        assert environment["DEBUG"] == "false", name
        required = REQUIRED_VARIABLE.match(environment["SECRET_KEY"])
        assert required and required["name"] == "SECRET_KEY", name


def test_compose_flower_requires_a_login() -> None:
    required = REQUIRED_VARIABLE.match(app_environments()["flower"]["FLOWER_BASIC_AUTH"])
    assert required and required["name"] == "FLOWER_BASIC_AUTH"


@pytest.mark.timeout(90)
def test_flower_refuses_requests_without_the_basic_auth_compose_sets() -> None:
    """Flower reads FLOWER_BASIC_AUTH from its environment, as the compose service sets it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    flower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "voiceproj",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "FLOWER_BASIC_AUTH": "ops:flower-pass-42",
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            assert flower.poll() is None, "flower exited"
            try:
                anonymous = httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "flower did not start"
                time.sleep(0.5)
        assert anonymous.status_code == 401
        assert httpx.get(url, auth=("ops", "wrong"), timeout=5).status_code == 401
        assert httpx.get(url, auth=("ops", "flower-pass-42"), timeout=5).status_code == 200
    finally:
        flower.terminate()
        flower.wait(timeout=30)


def makefile_variable(name: str) -> str:
    """What ``make`` sets ``name`` to on this host (it reads the Makefile itself)."""
    shown = subprocess.run(
        ["make", "--no-print-directory", "-pn", "-f", str(ROOT / "Makefile"), "install"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    ).stdout
    found = re.search(rf"^{name} [:?]?= (.*)$", shown, re.MULTILINE)
    assert found, f"the Makefile sets no {name} on this host"
    return found.group(1)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the AVX2 build is for x86-64 hosts")
def test_the_image_and_make_install_build_llama_cpp_alike_without_amx() -> None:
    import llama_cpp

    dockerfile = (ROOT / "Dockerfile").read_text()
    image_args = re.search(r'^ARG CMAKE_ARGS="(.*)"$', dockerfile, re.MULTILINE)
    assert image_args and image_args.group(1) == makefile_variable("LLAMA_CMAKE_ARGS")
    # The installed build: the AMX matrix product that crashed llama_decode is not in it.
    built_for = llama_cpp.llama_print_system_info().decode()
    assert "AVX2 = 1" in built_for and "AMX" not in built_for


def _openmp_policy_of_a_worker(**env: str) -> str:
    """OMP_WAIT_POLICY as a process that loaded the Celery app sees it."""
    probe = "import os, voiceproj.celery; print(os.environ['OMP_WAIT_POLICY'])"
    return printed(probe, unset={"OMP_WAIT_POLICY"}, **env)


def test_workers_let_idle_openmp_threads_sleep_unless_the_operator_chose() -> None:
    # Spinning GNU OpenMP threads after a Whisper decode starved the responder.
    assert _openmp_policy_of_a_worker() == "PASSIVE"
    assert _openmp_policy_of_a_worker(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"
