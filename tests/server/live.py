"""A real Jupyter server (or JupyterLab) on 127.0.0.1 with a token, for the REST and browser tests."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STARTUP_LIMIT_S = 90


@contextmanager
def private_dir(prefix: str) -> Iterator[Path]:
    """A scratch folder outside pytest's numbered basetemp folders.

    A pytest session prunes all but the newest three /tmp/pytest-of-USER/pytest-N folders when it starts, so
    another session starting on the same machine could delete a long-lived server's workspace mid-run.
    """
    with tempfile.TemporaryDirectory(prefix=f"workbench-{prefix}-") as folder:
        yield Path(folder)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class JupyterProcess:
    """`jupyter server` or `jupyter lab` in `root`, stopped by `stop()`; logs go to `log_path`."""

    def __init__(self, app: str, root: Path, log_path: Path, extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "jupyter",
            app,
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            "--ServerApp.allow_root=True",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            *(extra or []),
        ]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter exited with {self.process.returncode}; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            try:
                status, _ = self.request("GET", "api/status")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"jupyter did not answer within {STARTUP_LIMIT_S} s; see {self.log_path}")

    def request(self, method: str, path: str, body: Any = None, *, token: bool = True, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Call the server; returns (status, parsed JSON or text). With token=False, no credentials at all."""
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"token {self.token}"
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(f"{self.url}/{path}", data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, _decode(response.read(), response.headers.get_content_type())
        except urllib.error.HTTPError as error:
            return error.code, _decode(error.read(), error.headers.get_content_type())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def _decode(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if content_type == "application/json" and text:
        return json.loads(text)
    return text
