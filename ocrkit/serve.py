"""Command lines and environment of the two servers that show the workbench.

* ``lab_argv``: JupyterLab, with Voila as a server extension on the same port, so
  ``/lab`` opens the notebooks and ``/voila/render/workbench.ipynb`` the dashboard.
* ``dashboard_argv``: Voila standalone on one notebook (``ocrkit.server`` runs it,
  adding the health endpoint and larger socket buffers to plain ``voila``).

Both require a token, never reload on file changes and accept uploads up to
``OCRKIT_UPLOAD_LIMIT_MB``: ipywidgets' ``FileUpload`` sends the whole file in one
websocket message, and Jupyter closes the connection on a message larger than
``websocket_max_message_size`` (tornado's default: 10 MiB).
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, NoReturn, TextIO

from ocrkit.config import load_settings
from ocrkit.errors import OcrkitError

MIB = 1024 * 1024

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
"""The repository's notebooks (the package is installed editable, beside them)."""

WORKBENCH = "workbench.ipynb"

HEALTH_PATH = "/ocrkit/health"

# Room for the message envelope around the file bytes (header, comm ids, JSON).
_ENVELOPE = 16 * MIB
# jupyter_server's default for max_body_size and max_buffer_size (2.21).
_JUPYTER_BUFFER_DEFAULT = 512 * MIB


def websocket_message_limit(upload_limit_mb: int) -> int:
    """Return the largest websocket message, in bytes, for an upload limit in MB.

    The file may travel base64-encoded (4 bytes for every 3), so the limit is 4/3
    of the file size plus room for the envelope.
    """
    return upload_limit_mb * MIB * 4 // 3 + _ENVELOPE


def buffer_limit(upload_limit_mb: int) -> int:
    """Return the HTTP body and socket buffer size, in bytes, for an upload limit.

    tornado reads a whole websocket frame into the socket buffer, so the buffer must
    hold the largest message.
    """
    return max(_JUPYTER_BUFFER_DEFAULT, websocket_message_limit(upload_limit_mb) + MIB)


def _tornado_settings(upload_limit_mb: int) -> str:
    # NOTE: traitlets 5 parses a Dict option given as key=value into string values,
    # and tornado needs an int here, so the dict goes as a Python literal (a form
    # traitlets still reads, with a DeprecationWarning).
    settings = {"websocket_max_message_size": websocket_message_limit(upload_limit_mb)}
    return repr(settings)


def generate_token() -> str:
    """Return a random token for a server started without ``OCRKIT_TOKEN``."""
    return secrets.token_urlsafe(24)


# Every dashboard page starts a kernel that Voila does not stop when the page is
# closed. Kernels with no browser connected are shut down after 15 idle minutes.
_KERNEL_CULLING = (
    "--MappingKernelManager.cull_interval=60",
    "--MappingKernelManager.cull_idle_timeout=900",
    "--MappingKernelManager.cull_connected=False",
)


def lab_argv(
    port: int,
    *,
    token: str | None = None,
    notebook_dir: str | Path = NOTEBOOK_DIR,
    ip: str = "127.0.0.1",
    upload_limit_mb: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """Return the command that starts JupyterLab with Voila and the health endpoint.

    Without ``token`` the server takes ``JUPYTER_TOKEN`` from its environment (see
    ``server_env``) or, failing that, generates one and logs the URL with it. The
    token is never empty.
    """
    if upload_limit_mb is None:
        upload_limit_mb = load_settings().upload_limit_mb
    buffer = buffer_limit(upload_limit_mb)
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={port}",
        # Fail when the port is taken instead of moving to another one.
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={Path(notebook_dir).resolve()}",
        "--ServerApp.open_browser=False",
        "--ServerApp.autoreload=False",
        "--LabApp.watch=False",
        # Every endpoint but the login page and the health check needs the token.
        "--ServerApp.allow_unauthenticated_access=False",
        "--ServerApp.jpserver_extensions=voila.server_extension=True",
        "--ServerApp.jpserver_extensions=ocrkit.server=True",
        f"--ServerApp.tornado_settings={_tornado_settings(upload_limit_mb)}",
        f"--ServerApp.max_body_size={buffer}",
        f"--ServerApp.max_buffer_size={buffer}",
        # No requests to the internet for news or update checks.
        "--LabApp.news_url=None",
        *_KERNEL_CULLING,
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if token is not None:
        argv.append(f"--IdentityProvider.token={_checked_token(token)}")
    if _is_root():
        # Jupyter refuses to start as root without this. The container runs as a
        # normal user, but CI and some development machines run as root.
        argv.append("--ServerApp.allow_root=True")
    argv.extend(extra)
    return argv


def dashboard_argv(
    port: int,
    *,
    token: str | None = None,
    notebook: str | Path = NOTEBOOK_DIR / WORKBENCH,
    ip: str = "127.0.0.1",
    upload_limit_mb: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """Return the command that starts Voila standalone on one notebook.

    Without ``token`` the server takes ``JUPYTER_TOKEN`` from its environment or
    generates one and logs the URL with it: plain ``voila`` would need no token.
    """
    if upload_limit_mb is None:
        upload_limit_mb = load_settings().upload_limit_mb
    buffer = buffer_limit(upload_limit_mb)
    notebook = Path(notebook).resolve()
    argv = [
        sys.executable,
        "-m",
        "ocrkit.server",
        str(notebook),
        f"--Voila.root_dir={notebook.parent}",
        f"--Voila.ip={ip}",
        f"--Voila.port={port}",
        "--Voila.port_retries=0",
        "--Voila.open_browser=False",
        "--Voila.autoreload=False",
        f"--Voila.tornado_settings={_tornado_settings(upload_limit_mb)}",
        f"--DashboardApp.max_body_size={buffer}",
        f"--DashboardApp.max_buffer_size={buffer}",
        *_KERNEL_CULLING,
    ]
    if token is not None:
        argv.append(f"--Voila.token={_checked_token(token)}")
    else:
        argv.append("--Voila.auto_token=True")
    argv.extend(extra)
    return argv


def server_env(
    storage: str | Path,
    *,
    token: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment for a server and its kernels.

    ``OCRKIT_STORAGE`` becomes absolute, so kernels started in the notebook folder
    open the same store as the command line. ``token`` goes in ``JUPYTER_TOKEN``,
    where both servers read it, and so stays out of the process list.
    """
    env = dict(os.environ if base is None else base)
    env["OCRKIT_STORAGE"] = str(Path(storage).resolve())
    if token is not None:
        env["JUPYTER_TOKEN"] = _checked_token(token)
    return env


def server_urls(
    kind: Literal["lab", "dashboard"], ip: str, port: int, token: str
) -> list[str]:
    """Return the URLs a person opens, with the token, for a server on ``ip:port``."""
    host = "127.0.0.1" if ip in ("", "0.0.0.0", "::") else ip
    if ":" in host:
        host = f"[{host}]"
    base = f"http://{host}:{port}"
    query = f"?token={token}"
    if kind == "lab":
        return [f"{base}/lab{query}", f"{base}/voila/render/{WORKBENCH}{query}"]
    return [f"{base}/{query}"]


def start_server(
    kind: Literal["lab", "dashboard"],
    *,
    storage: str | Path,
    port: int,
    ip: str,
    token: str | None = None,
    notebook_dir: str | Path = NOTEBOOK_DIR,
    output: TextIO | None = None,
) -> NoReturn:
    """Print the server's URLs, then replace this process with the server.

    Without ``token`` a random one is generated and printed. A token given by the
    caller (``OCRKIT_TOKEN``) is not printed.
    """
    output = output or sys.stderr
    notebook_dir = Path(notebook_dir)
    if kind == "lab":
        if not notebook_dir.is_dir():
            raise OcrkitError(
                f"the notebook folder {notebook_dir} does not exist; "
                "give another with --notebooks"
            )
        argv = lab_argv(port, notebook_dir=notebook_dir, ip=ip)
        title = "JupyterLab and the workbench dashboard"
    else:
        notebook = notebook_dir / WORKBENCH
        if not notebook.is_file():
            raise OcrkitError(
                f"the workbench notebook {notebook} does not exist; "
                "give the folder that holds it with --notebooks"
            )
        argv = dashboard_argv(port, notebook=notebook, ip=ip)
        title = "the workbench dashboard"
    generated = token is None
    if token is None:
        token = generate_token()
    env = server_env(storage, token=token)
    shown = token if generated else "<OCRKIT_TOKEN>"
    print(f"ocrkit: starting {title}, store {env['OCRKIT_STORAGE']}", file=output)
    for url in server_urls(kind, ip, port, shown):
        print(f"ocrkit: open {url}", file=output)
    output.flush()
    try:
        os.execve(argv[0], argv, env)
    except OSError as exc:
        raise OcrkitError(f"cannot start {argv[0]} ({exc.strerror})") from exc


def _checked_token(token: str) -> str:
    if not token.strip():
        raise ValueError("the server token is empty; give a token or None")
    return token


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
