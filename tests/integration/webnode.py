"""A demo-like network in a temp dir and the real web service of a node in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

from core.clock import FixedClock, SystemClock
from node.clerks import hash_password
from tests.helpers import CITY, TOWN, VILLAGE, Network, delegate_demo_items, make_network, open_desk

PASSWORD = "correct horse battery"
GOOD_ID = "11010519491231002X"
ID_2 = "330481199001010014"


def build_city(root: Path) -> Network:
    """Central, a town and a village, the demo catalog delegated, clerks on both nodes.

    Real time: the web service runs with the system clock, so grants must be valid now.
    """
    net = make_network(root, FixedClock(t=SystemClock().now() - 3600, step=1))
    net.add_node(TOWN, "town", CITY, name="许村镇便民服务中心")
    net.add_node(VILLAGE, "village", TOWN, name="新阳村便民服务中心")
    delegate_demo_items(net, TOWN, [VILLAGE])
    for code, users in (
        (TOWN, [("shenpi", "沈批", ["approver", "clerk"]), ("guanli", "管理员", ["admin", "auditor"])]),
        (
            VILLAGE,
            [("wangli", "王丽", ["clerk"]), ("shenji", "审计", ["auditor"]), ("cunguan", "村管", ["admin"])],
        ),
    ):
        with open_desk(net.node_dir(code), net.clock) as desk:
            digest = hash_password(PASSWORD)
            for user, name, roles in users:
                desk.clerks.add(desk.keys, user, name, roles, digest, actor="sys:test")
    return net


def device_token(home: Path, name: str = "kiosk") -> str:
    with open_desk(home, FixedClock()) as desk:
        return desk.clerks.add_device(name, ["clerk"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Web:
    url: str
    home: Path
    proc: subprocess.Popen[bytes]
    jar: CookieJar = field(default_factory=CookieJar)

    def opener(self) -> urllib.request.OpenerDirector:
        return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(
        self, method: str, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with self.opener().open(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read().decode(errors="replace")

    def api(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        status, _, text = self.request(
            method,
            path,
            data=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return status, json.loads(text)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@contextmanager
def serve(home: Path, probe: str = "/api/v1/openapi.json", log_file: Path | None = None) -> Iterator[Web]:
    """Start the web service of a node or central (``python -m tongban.run --only web``) on a
    free loopback port, wait until ``probe`` answers 200; stop it afterwards."""
    port = free_port()
    log_path = log_file or home / "web.log"
    log = open(log_path, "wb")  # noqa: SIM115 — closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "tongban.run", str(home), "--only", "web", "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    web = Web(f"http://127.0.0.1:{port}", home, proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if web.request("GET", probe)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("web service did not start: " + log_path.read_text())
            time.sleep(0.1)
        yield web
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def form(data: dict[str, str | list[str]]) -> bytes:
    return urllib.parse.urlencode(data, doseq=True).encode()


def login(web: Web, user: str, password: str = PASSWORD) -> tuple[int, str]:
    web.jar.clear()
    _, _, html = web.request("GET", "/login")
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', html)
    assert login_csrf
    status, _headers, body = web.request(
        "POST",
        "/login",
        data=form({"user": user, "password": password, "login_csrf": login_csrf[1], "next": "/"}),
    )
    return status, body


def csrf_of(web: Web, path: str = "/") -> str:
    _, _, html = web.request("GET", path)
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found[1]


def multipart(
    fields: dict[str, str | list[str]], files: list[tuple[str, str, str, bytes]]
) -> tuple[bytes, dict[str, str]]:
    """A ``multipart/form-data`` body of ``fields`` and ``files`` (field, filename, type,
    bytes), and its Content-Type header, as a browser sends a form with file fields."""
    boundary = "----tongban" + os.urandom(8).hex()
    out = bytearray()
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += one.encode() + b"\r\n"
    for name, filename, kind, data in files:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {kind}\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}
