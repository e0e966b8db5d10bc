"""Helpers for tests that start servers: free ports and stopping process trees."""

from __future__ import annotations

import socket
import subprocess

import psutil


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process_tree(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and every process it started (kernels, reading workers).

    A plain SIGTERM to Voila does not reliably stop its kernels, so the children
    are found first and killed by process id.
    """
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    for child in children:
        if child.is_running():
            child.kill()
