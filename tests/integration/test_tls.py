"""HTTPS for the web pages as the roles set it up: nginx terminating TLS in front of a
node's real web service, from the role's own templates (rendered by Ansible's template
module), with a self-signed certificate made here.

The service behind it sets ``Secure`` cookies and HSTS (the role's node.toml with a
certificate configured); a browser that comes over plain HTTP to the TLS port is sent to
HTTPS. nginx runs from a configuration of the test's own, on a free port.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import VILLAGE
from tests.integration.webnode import build_city, free_port, serve

ROLES = Path(__file__).resolve().parents[2] / "ansible" / "roles"
ANSIBLE = str(Path(sys.executable).parent / "ansible")
pytestmark = pytest.mark.slow  # nginx and openssl: scripts/system-deps.sh installs them


def render(template: Path, dest: Path, *var_files: Path, **variables: object) -> None:
    """``template`` as the roles' template task writes it, with a role's ``var_files``."""
    files = [arg for path in var_files for arg in ("-e", f"@{path}")]
    out = subprocess.run(
        [ANSIBLE, "localhost", "-c", "local", "-m", "ansible.builtin.template",
         "-a", f"src={template} dest={dest}", *files, "-e", json.dumps(variables)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def self_signed(root: Path) -> tuple[Path, Path]:
    cert, key = root / "tls.crt", root / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@contextmanager
def nginx(root: Path, site: Path, port: int) -> Iterator[None]:
    conf = root / "nginx.conf"
    temp = root / "nginx-temp"
    temp.mkdir()
    conf.write_text(
        f"daemon off; worker_processes 1; pid {root}/nginx.pid; error_log {root}/nginx-error.log;\n"
        "events {}\n"
        f"http {{ access_log {root}/nginx-access.log; client_body_temp_path {temp}/body;"
        f" proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi; uwsgi_temp_path {temp}/uwsgi;"
        f" scgi_temp_path {temp}/scgi; include {site}; }}\n",
        encoding="utf-8",
    )
    checked = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(["nginx", "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_nginx_from_the_role_publishes_the_pages_over_https(tmp_path: Path) -> None:
    net = build_city(tmp_path)
    home = net.node_dir(VILLAGE)
    cert, key = self_signed(tmp_path)
    tls = {"tongban_common_tls_cert": str(cert), "tongban_common_tls_key": str(key)}
    # The role's node.toml, with a certificate configured, turns the web options on and
    # keeps the service on loopback, for nginx to reach.
    role_toml = tmp_path / "role-node.toml"
    render(
        ROLES / "tongban_node" / "templates" / "node.toml.j2",
        role_toml,
        ROLES / "tongban_node" / "vars" / "main.yml",
        **tls,
        tongban_node_code=VILLAGE, tongban_node_tier="village", tongban_node_name="新阳村",
        tongban_node_parent=VILLAGE[:9], tongban_node_web_listen="0.0.0.0:8400",
        tongban_node_sync_parent="", tongban_node_sync_fallback="", tongban_node_sync_listen="",
        tongban_node_sync_interval=60,
    )  # fmt: skip
    web_options = tomllib.loads(role_toml.read_text(encoding="utf-8"))["web"]
    assert web_options == {
        "listen": "127.0.0.1:8400",
        "secure_cookies": True,
        "hsts": True,
        "forwarded_for": True,
    }
    with (home / "node.toml").open("a", encoding="utf-8") as f:
        f.write("\n[web]\nsecure_cookies = true\nhsts = true\nforwarded_for = true\n")
    port = free_port()
    with serve(home, probe="/healthz") as web:
        site = tmp_path / "site.conf"
        upstream = web.url.removeprefix("http://")
        render(
            ROLES / "tongban_common" / "templates" / "nginx-tls.conf.j2",
            site,
            **tls,
            tongban_common_tls_listen=f"127.0.0.1:{port}", tongban_common_tls_server_name="_",
            tongban_common_tls_upstream=upstream, tongban_common_tls_title=f"node {VILLAGE}",
        )  # fmt: skip
        with nginx(tmp_path, site, port):
            context = ssl.create_default_context(cafile=str(cert))
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
            conn.request("GET", "/healthz")
            health = conn.getresponse()
            assert health.status == 200 and json.loads(health.read())["code"] == VILLAGE
            conn.request("GET", "/login")
            page = conn.getresponse()
            page.read()
            cookies = page.headers.get_all("Set-Cookie") or []
            assert page.status == 200 and cookies and all("Secure" in c for c in cookies), cookies
            assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
            # Plain HTTP to the TLS port is sent to HTTPS, never served.
            plain = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            plain.request("GET", "/login")
            moved = plain.getresponse()
            assert moved.status == 301 and moved.headers["Location"].startswith(f"https://127.0.0.1:{port}/")
        access = (tmp_path / "nginx-access.log").read_text()
    assert "GET /login" in access and (home / "web.log").read_text().count("GET /login") >= 1
