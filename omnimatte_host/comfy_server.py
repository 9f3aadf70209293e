"""Start the real ComfyUI server (``main.py --cpu``) on loopback and always stop it (tests, soak benchmark)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

START_TIMEOUT_S = float(os.environ.get("OMNIMATTE_SERVER_START_TIMEOUT", "180"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, comfy_path: Path, pack_dir: Path, base_dir: Path, pack_name: str = "easy_omnimatte",
                 extra_args: tuple[str, ...] = (), file_size_limit: int | None = None):
        """``file_size_limit`` (bytes): no file the server writes may grow past it (RLIMIT_FSIZE; Python
        ignores SIGXFSZ, so a write past it fails with EFBIG as on a full disk)."""
        self.comfy_path = comfy_path
        self.file_size_limit = file_size_limit
        self.extra_args = list(extra_args)
        self.base_dir = base_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base_dir / "server.log"
        (base_dir / "custom_nodes").mkdir(parents=True, exist_ok=True)
        (base_dir / "custom_nodes" / pack_name).symlink_to(pack_dir, target_is_directory=True)
        self.process: subprocess.Popen | None = None

    def start(self) -> "ComfyServer":
        cmd = [sys.executable, str(self.comfy_path / "main.py"), "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--base-directory", str(self.base_dir),
               "--database-url", "sqlite:///:memory:", *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=os.environ.get("OMNIMATTE_TEST_THREADS", "1"))
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(cmd, cwd=self.comfy_path, stdout=log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True, preexec_fn=self._limit_files)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode} during start:\n{self.log_tail()}")
            try:
                self.get_json("/object_info")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def _limit_files(self) -> None:
        if self.file_size_limit is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size_limit, self.file_size_limit))

    def kill(self) -> None:
        """SIGKILL the server's process group, as a crash or a power cut would end it."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def get_json(self, route: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + route, timeout=timeout) as response:
            return json.loads(response.read())

    def post_json(self, route: str, payload: dict, timeout: float = 30) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + route, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
                return response.status, json.loads(body) if body.strip() else {}  # /interrupt answers empty
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
