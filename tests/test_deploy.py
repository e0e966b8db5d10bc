"""Deployment files and server command lines agree with each other and the code.

No container engine runs in the test environment, so the Dockerfile and compose
file are checked as text, and the Dockerfile's health check command runs against a
health endpoint served in this process.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
import yaml
from conftest import make_text_pdf

from ocrkit.config import load_settings
from ocrkit.serve import (
    HEALTH_PATH,
    MIB,
    buffer_limit,
    dashboard_argv,
    lab_argv,
    server_env,
    server_urls,
    websocket_message_limit,
)
from ocrkit.server import health_handlers
from ocrkit.store import DATABASE_NAME, Store

REPO = Path(__file__).resolve().parents[1]
RELOAD_FLAGS = re.compile(r"--(reload|autoreload|watch|debug|dev-mode)\b(?!=False)")


def _normalize(requirement: str) -> str:
    """Return ``name==version`` with the name in PEP 503 normal form."""
    name, version = requirement.split("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower().strip()}=={version.strip()}"


def _dockerfile() -> list[str]:
    """Return the Dockerfile's instructions, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _instructions(keyword: str) -> list[str]:
    return [
        line[len(keyword) :].strip()
        for line in _dockerfile()
        if line.upper().startswith(keyword + " ")
    ]


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for value in _instructions("ENV"):
        for item in shlex.split(value):
            key, _, setting = item.partition("=")
            env[key] = setting
    return env


def _compose_service() -> dict[str, object]:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert list(services) == ["ocrkit"]
    return services["ocrkit"]


# -- environment.yml ------------------------------------------------------------------


def test_environment_matches_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["workbench"]
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    dependencies = environment["dependencies"]
    pip_section = next(item["pip"] for item in dependencies if isinstance(item, dict))
    pinned = [item for item in pip_section if "==" in item]

    assert "python=3.11" in dependencies
    assert "-e ." in pip_section
    assert len(pinned) == len(set(pinned)), "a package is listed twice"
    assert sorted(map(_normalize, pinned)) == sorted(map(_normalize, declared))


def test_environment_paddle_note_matches_install_script() -> None:
    pattern = re.compile(r"pip install[^\n]*--no-deps((?:\s+\\?\s*[\w.-]+==[\w.]+)+)")

    def no_deps_pins(text: str) -> list[str]:
        match = pattern.search(text)
        assert match is not None
        return sorted(re.findall(r"[\w.-]+==[\w.]+", match.group(1)))

    script = no_deps_pins((REPO / "scripts" / "install.sh").read_text())
    environment = no_deps_pins((REPO / "environment.yml").read_text())
    assert environment == script


def test_pyproject_pins_every_runtime_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["workbench"]
    unpinned = [item for item in declared if "==" not in item]
    assert unpinned == []


# -- Dockerfile and compose -----------------------------------------------------------


def test_dockerfile_base_is_slim_python_311() -> None:
    bases = _instructions("FROM")
    assert len(bases) == 1
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", bases[0])


def test_dockerfile_installs_runtime_libraries() -> None:
    apt = " ".join(line for line in _instructions("RUN") if "apt-get install" in line)
    for package in ("libgomp1", "libglib2.0-0"):
        assert package in apt.split()


def test_dockerfile_uses_install_script() -> None:
    runs = _instructions("RUN")
    assert "bash scripts/install.sh --system" in runs
    script = (REPO / "scripts" / "install.sh").read_text()
    assert "--system) use_venv=0" in script


def test_dockerfile_runs_as_normal_user() -> None:
    lines = _dockerfile()
    users = [line.split()[1] for line in lines if line.upper().startswith("USER ")]
    assert users, "no USER instruction"
    assert users[-1] not in ("root", "0")
    last_user = max(i for i, line in enumerate(lines) if line.startswith("USER "))
    command = max(i for i, line in enumerate(lines) if line.startswith("CMD "))
    assert last_user < command


def test_ports_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCRKIT_PORT", raising=False)
    default_port = load_settings().port
    env = _dockerfile_env()
    exposed = _instructions("EXPOSE")
    service = _compose_service()
    assert exposed == [env["OCRKIT_PORT"]]
    assert env["OCRKIT_PORT"] == str(default_port)
    assert service["ports"] == [f"{env['OCRKIT_PORT']}:{env['OCRKIT_PORT']}"]
    assert service["environment"]["OCRKIT_PORT"] == env["OCRKIT_PORT"]
    assert env["OCRKIT_IP"] == "0.0.0.0"


def test_storage_is_the_volume() -> None:
    env = _dockerfile_env()
    volumes = json.loads(_instructions("VOLUME")[0])
    service = _compose_service()
    assert volumes == [env["OCRKIT_STORAGE"]]
    assert service["volumes"] == [f"./storage:{env['OCRKIT_STORAGE']}"]
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "storage" in ignored
    assert ".venv" in ignored


def test_container_command_has_no_reload() -> None:
    command = json.loads(_instructions("CMD")[0])
    assert command == ["ocrkit", "serve"]
    assert not RELOAD_FLAGS.search((REPO / "Dockerfile").read_text())
    compose_text = (REPO / "docker-compose.yml").read_text()
    assert not RELOAD_FLAGS.search(compose_text)
    assert "command" not in _compose_service()


def test_server_argv_has_no_reload() -> None:
    for argv in (lab_argv(8888, token="t"), dashboard_argv(8888, token="t")):
        assert not any(RELOAD_FLAGS.search(item) for item in argv)
        assert not any(
            item.endswith(("autoreload=True", "watch=True")) for item in argv
        )
    assert "--ServerApp.autoreload=False" in lab_argv(8888)
    assert "--LabApp.watch=False" in lab_argv(8888)
    assert "--Voila.autoreload=False" in dashboard_argv(8888)


def test_healthcheck_path_is_served() -> None:
    checks = _instructions("HEALTHCHECK")
    assert len(checks) == 1
    assert HEALTH_PATH in checks[0]
    patterns = [rule[0] for rule in health_handlers("/", Path("unused"))]
    assert patterns == [HEALTH_PATH]


@pytest.fixture
def health_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A health endpoint on a free loopback port, served from a thread."""
    storage = tmp_path / "storage"
    ready = threading.Event()
    state: dict[str, object] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        server = tornado.httpserver.HTTPServer(
            tornado.web.Application(health_handlers("/", storage))
        )
        server.add_sockets(sockets)
        state.update(port=sockets[0].getsockname()[1], loop=loop, server=server)
        ready.set()
        loop.run_forever()
        server.stop()
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield int(state["port"]), storage
    loop = state["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


def _run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    command = _instructions("HEALTHCHECK")[0].split(" CMD ", 1)[1]
    argv = shlex.split(command)
    assert argv[0] == "python"
    argv[0] = sys.executable
    env = {"OCRKIT_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_healthcheck_command_passes_and_fails(
    health_server: tuple[int, Path],
) -> None:
    port, storage = health_server
    healthy = _run_healthcheck(port)
    assert healthy.returncode == 0, healthy.stderr

    (storage / DATABASE_NAME).write_bytes(b"not a database" * 100)
    broken = _run_healthcheck(port)
    assert broken.returncode != 0
    assert "503" in broken.stderr


# -- server command lines -------------------------------------------------------------


def _setting(argv: list[str], option: str) -> str:
    values = [item.split("=", 1)[1] for item in argv if item.startswith(option + "=")]
    assert len(values) == 1, f"{option} appears {len(values)} times"
    return values[0]


def test_message_limit_fits_100_mb_upload() -> None:
    file_bytes = 100 * MIB
    assert websocket_message_limit(100) > file_bytes * 4 // 3
    assert buffer_limit(100) > websocket_message_limit(100)
    assert websocket_message_limit(1000) > 1000 * MIB * 4 // 3
    assert buffer_limit(1000) > websocket_message_limit(1000)


@pytest.mark.parametrize("limit_mb", [100, 200, 1000])
def test_argv_carries_upload_limit(limit_mb: int) -> None:
    lab = lab_argv(8888, upload_limit_mb=limit_mb)
    dashboard = dashboard_argv(8888, upload_limit_mb=limit_mb)
    expected = websocket_message_limit(limit_mb)
    for argv, prefix in ((lab, "--ServerApp"), (dashboard, "--Voila")):
        settings = ast.literal_eval(_setting(argv, f"{prefix}.tornado_settings"))
        assert settings == {"websocket_max_message_size": expected}
    assert int(_setting(lab, "--ServerApp.max_buffer_size")) >= expected
    assert int(_setting(lab, "--ServerApp.max_body_size")) >= expected
    assert int(_setting(dashboard, "--DashboardApp.max_buffer_size")) >= expected


def test_argv_upload_limit_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCRKIT_UPLOAD_LIMIT_MB", "321")
    settings = ast.literal_eval(_setting(lab_argv(1), "--ServerApp.tornado_settings"))
    assert settings["websocket_max_message_size"] == websocket_message_limit(321)


def test_argv_token_handling() -> None:
    assert _setting(lab_argv(1, token="abc"), "--IdentityProvider.token") == "abc"
    assert _setting(dashboard_argv(1, token="abc"), "--Voila.token") == "abc"
    # Without a token the servers read JUPYTER_TOKEN or generate one.
    assert not any("token=" in item for item in lab_argv(1))
    assert "--Voila.auto_token=True" in dashboard_argv(1)
    for empty in ("", "  "):
        with pytest.raises(ValueError, match="empty"):
            lab_argv(1, token=empty)
        with pytest.raises(ValueError, match="empty"):
            dashboard_argv(1, token=empty)
        with pytest.raises(ValueError, match="empty"):
            server_env("storage", token=empty)


def test_argv_loads_health_extension() -> None:
    argv = lab_argv(1)
    assert "--ServerApp.jpserver_extensions=ocrkit.server=True" in argv
    assert "--ServerApp.jpserver_extensions=voila.server_extension=True" in argv
    assert "--ServerApp.allow_unauthenticated_access=False" in argv
    assert dashboard_argv(1)[1:3] == ["-m", "ocrkit.server"]


def test_server_env_storage_is_absolute(tmp_path: Path) -> None:
    env = server_env("storage", token="secret", base={"PATH": "/bin"})
    assert Path(env["OCRKIT_STORAGE"]).is_absolute()
    assert env["OCRKIT_STORAGE"] == str((Path.cwd() / "storage").resolve())
    assert env["JUPYTER_TOKEN"] == "secret"
    assert env["PATH"] == "/bin"


def test_server_urls() -> None:
    lab = server_urls("lab", "0.0.0.0", 8888, "tok")
    assert lab == [
        "http://127.0.0.1:8888/lab?token=tok",
        "http://127.0.0.1:8888/voila/render/workbench.ipynb?token=tok",
    ]
    assert server_urls("dashboard", "::1", 9000, "tok") == [
        "http://[::1]:9000/?token=tok"
    ]


# -- command line errors --------------------------------------------------------------


def _ocrkit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocrkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_serve_rejects_unusable_storage(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    storage.write_text("a file, not a folder")
    result = _ocrkit("--storage", str(storage), "serve", "--port", "1", cwd=tmp_path)
    assert result.returncode == 4
    assert result.stderr.startswith("ocrkit: error:")
    assert "Traceback" not in result.stderr


def test_dashboard_needs_workbench_notebook(tmp_path: Path) -> None:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    result = _ocrkit(
        "--storage",
        str(tmp_path / "storage"),
        "dashboard",
        "--port",
        "1",
        "--notebooks",
        str(notebooks),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "workbench.ipynb does not exist" in result.stderr
    assert "Traceback" not in result.stderr


# -- upload names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upload_name", "shown"),
    [
        ("../../x.pdf", "x.pdf"),
        ("..\\..\\x.pdf", "x.pdf"),
        ("/etc/cron.d/x.pdf", "x.pdf"),
        ("files/../../../x.pdf", "x.pdf"),
        ("¿Año ñandú?.pdf", "¿Año ñandú?.pdf"),
    ],
)
def test_upload_name_never_chooses_path(
    tmp_path: Path, upload_name: str, shown: str
) -> None:
    pdf = make_text_pdf(tmp_path / "source.pdf", [[f"Documento {upload_name}"]])
    data = pdf.read_bytes()
    pdf.unlink()
    root = tmp_path / "area" / "storage"
    with Store(root) as store:
        before = {path for path in tmp_path.rglob("*")}
        document = store.add_bytes(data, upload_name)
        added = {path for path in tmp_path.rglob("*")} - before
        assert document.filename == shown
        assert store.source_path(document.id) == (
            root / "files" / f"{document.sha256}.pdf"
        )
    assert added, "the upload wrote no file"
    for path in added:
        assert path.is_relative_to(root), f"{path} is outside the store"
        assert shown not in path.name
    assert not (tmp_path / "x.pdf").exists()
