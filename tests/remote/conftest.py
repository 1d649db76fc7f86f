"""Real servers for the pull tests: OpenSSH's sshd and an HTTPS listing server, both on 127.0.0.1.

- `sshd`: Debian's openssh-server (`make test-deps` installs it) on a free port, with a generated host key
  and a key-only test user, serving a folder of the sample deliveries (`drop`).
- `https_server`: http.server + ssl with a self-signed certificate the client trusts explicitly (the
  connection's `verify` extra), serving a JSON listing and the files, failing on demand.
- `pull_env`: a fresh database in the session's warehouse server and a fresh inbox/archive per test, so
  these tests never see (or disturb) the demo warehouse's deliveries.
"""

from __future__ import annotations

import datetime as dt
import importlib
import ipaddress
import json
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from throwaway_db import free_port

ROOT = Path(__file__).resolve().parents[2]
# Airflow (imported by the SFTP/HTTP hooks) keeps its config under the test home, not in ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(Path(os.environ["TRIVSEL_HOME"]) / "airflow"))
SSHD = Path("/usr/sbin/sshd")
SFTP_USER = "trivselsftp"
HTTP_TOKEN = "s3cret-bearer-token-not-for-logs"
SFTP_CONN = "trivsel_test_sftp"
HTTP_CONN = "trivsel_test_https"


@pytest.fixture(scope="session")
def remote_root():
    """A folder outside the test home (the warehouse fixture wipes that), readable by the sftp user."""
    root = Path(tempfile.mkdtemp(prefix="trivsel-remote-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def drop(remote_root) -> Path:
    """The sample deliveries (`trivsel samples`) laid out as a remote drop: <code>/<source>/<period>/<file>."""
    folder = remote_root / "drop"
    for domain in ("survey", "absence", "incidents"):
        importlib.import_module(f"trivsel.samples.{domain}").generate(folder)
    for p in [folder, *folder.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return folder


@pytest.fixture
def served(remote_root, request) -> Path:
    """A folder for one test that the sftp user can reach (pytest's tmp_path is private to root)."""
    folder = remote_root / "served" / request.node.name.replace("[", "_").replace("]", "_")
    folder.mkdir(parents=True)
    folder.parent.chmod(0o755)
    folder.chmod(0o755)
    return folder


def drop_files(drop: Path) -> dict[str, bytes]:
    """{'<code>/<source>/<period>/<file>': bytes} of a drop or an inbox (hidden files left out)."""
    return {p.relative_to(drop).as_posix(): p.read_bytes() for p in sorted(drop.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


# ------------------------------------------------------------------------------------------------ sshd


def _ensure_user() -> None:
    try:
        pwd.getpwnam(SFTP_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SFTP_USER],
                       check=True, capture_output=True)
    # OpenSSH refuses a locked account ('!' password) without PAM; '*' is "no password" but not locked.
    subprocess.run(["usermod", "-p", "*", SFTP_USER], check=True, capture_output=True)


@pytest.fixture(scope="session")
def sshd(remote_root):
    if not SSHD.exists():
        pytest.fail("OpenSSH's sshd is not installed: run `make test-deps` (apt-get install openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("the sshd fixture creates a test user and needs root")
    _ensure_user()
    d = remote_root / "sshd"
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "other_key")], check=True)
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    (d / "authorized_keys").chmod(0o644)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    config = d / "sshd_config"
    config.write_text(f"""
ListenAddress 127.0.0.1
Port {port}
HostKey {d / 'host_key'}
PidFile {d / 'sshd.pid'}
AuthorizedKeysFile {d / 'authorized_keys'}
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers {SFTP_USER}
Subsystem sftp internal-sftp
ForceCommand internal-sftp
AllowTcpForwarding no
X11Forwarding no
LogLevel VERBOSE
""")
    log = (d / "sshd.log").open("w")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"sshd did not start: {(d / 'sshd.log').read_text()}")
        time.sleep(0.1)
    host_key = " ".join((d / "host_key.pub").read_text().split()[:2])
    yield {"port": port, "dir": d, "host_key": host_key, "client_key": d / "client_key",
           "other_key": d / "other_key", "log": d / "sshd.log"}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def sftp_connection(sshd, key: Path | None = None, host_key: str | None = None) -> str:
    return json.dumps({"conn_type": "sftp", "login": SFTP_USER,
                       "extra": {"key_file": str(key or sshd["client_key"]),
                                 "host_key": host_key or sshd["host_key"], "look_for_keys": "false"}})


# ------------------------------------------------------------------------------------------------ https


class HttpsState:
    def __init__(self, drop: Path):
        self.drop = drop
        self.fail: dict[str, list[str]] = {}  # path -> failure modes still to serve, in order
        self.lie: dict[str, int] = {}  # '/files/...' -> size the listing claims
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.hang = 3.0  # seconds a 'timeout' request waits before it answers nothing

    def reset(self) -> None:
        self.fail.clear()
        self.lie.clear()
        self.requests.clear()


def _handler(state: HttpsState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, code: int, body: bytes, headers: dict | None = None, truncate: bool = False):
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if truncate else body)
            self.wfile.flush()
            if truncate:
                self.close_connection = True

        def do_GET(self):
            path = urlsplit(self.path).path
            state.requests.append((path, self.headers.get("Range")))
            if self.headers.get("Authorization") != f"Bearer {HTTP_TOKEN}":
                return self._send(401, b"unauthorized")
            modes = state.fail.get(path)
            mode = modes.pop(0) if modes else None
            if mode == "500":
                return self._send(500, b"internal error")
            if mode == "timeout":
                time.sleep(state.hang)
                self.close_connection = True
                return
            parts = [p for p in path.split("/") if p]
            if len(parts) == 3 and parts[0] == "listing" and parts[2].endswith(".json"):
                folder = state.drop / parts[1] / parts[2][:-5]
                if not folder.is_dir():
                    return self._send(404, b"no such listing")
                files = []
                for p in sorted(folder.rglob("*")):
                    if p.is_file():
                        rel = p.relative_to(folder).as_posix()
                        url = f"/files/{parts[1]}/{parts[2][:-5]}/{rel}"
                        mtime = dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC)
                        files.append({"name": rel, "size": state.lie.get(url, p.stat().st_size),
                                      "modified": mtime.isoformat(), "url": url})
                return self._send(200, json.dumps({"files": files}).encode(),
                                  {"Content-Type": "application/json"})
            if parts and parts[0] == "files":
                p = state.drop.joinpath(*parts[1:])
                if not p.is_file():
                    return self._send(404, b"no such file")
                data = p.read_bytes()
                rng = self.headers.get("Range")
                headers = {"Content-Type": "application/octet-stream",
                           "Last-Modified": formatdate(p.stat().st_mtime, usegmt=True)}
                if rng and rng.startswith("bytes=") and mode != "ignore-range":
                    start = int(rng[6:].split("-")[0])
                    headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
                    return self._send(206, data[start:], headers, truncate=mode == "truncate")
                return self._send(200, data, headers, truncate=mode == "truncate")
            return self._send(404, b"not found")

    return Handler


def _self_signed(d: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trivsel test server")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = d / "server.pem", d / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture(scope="session")
def https_server(remote_root, drop):
    d = remote_root / "https"
    d.mkdir()
    cert, key = _self_signed(d)
    state = HttpsState(drop)
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(state))
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"port": server.server_address[1], "ca": cert, "state": state}
    server.shutdown()
    server.server_close()


@pytest.fixture
def https(https_server):
    https_server["state"].reset()
    yield https_server
    https_server["state"].reset()


def https_connection(server, token: str = HTTP_TOKEN) -> str:
    return json.dumps({"conn_type": "http", "extra": {"verify": str(server["ca"]),
                                                       "Authorization": f"Bearer {token}"}})


# ------------------------------------------------------------------------------------------------ per test


@pytest.fixture
def pull_env(warehouse_url, tmp_path, monkeypatch):
    """A fresh database in the session's server, and a fresh inbox and archive, for one test."""
    import psycopg
    from psycopg import sql

    from trivsel import warehouse

    name = f"pulltest_{os.getpid()}_{time.monotonic_ns() % 10**9}"
    with psycopg.connect(warehouse.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = warehouse.url(name)
    monkeypatch.setenv("WAREHOUSE_URL", url)
    monkeypatch.setenv("TRIVSEL_INBOX", str(tmp_path / "inbox"))
    monkeypatch.setenv("TRIVSEL_ARCHIVE", str(tmp_path / "archive"))
    yield {"url": url, "inbox": tmp_path / "inbox", "archive": tmp_path / "archive", "tmp": tmp_path}
    monkeypatch.delenv("WAREHOUSE_URL")
    with psycopg.connect(warehouse.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def config_with(locations: dict[tuple[str, str], dict]):
    """config/municipalities.yml with extra keys for some (code, source): {'location': ..., 'conn_id': ...}."""
    from trivsel.config import parse_config

    data = yaml.safe_load((ROOT / "config" / "municipalities.yml").read_text())
    for m in data["municipalities"]:
        for (code, source), extra in locations.items():
            if m["code"] == code:
                m["sources"][source].update(extra)
    return parse_config(data, where="test config"), data


# ------------------------------------------------------------------------------------------------ s3

S3_CONN = "trivsel_test_s3"
S3_BUCKET = "kommune-drop"


@pytest.fixture(scope="session")
def s3_server(drop):
    """moto's S3-compatible server (a real HTTP server, from PyPI) with the sample drop under deliveries/."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket=S3_BUCKET)
    for p in sorted(drop.rglob("*")):
        if p.is_file():
            client.upload_file(str(p), S3_BUCKET, f"deliveries/{p.relative_to(drop).as_posix()}")
    yield {"port": port, "endpoint": endpoint, "client": client}
    server.stop()


def s3_connection(server, endpoint: str | None = None) -> str:
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing-secret",
                       "extra": {"endpoint_url": endpoint or server["endpoint"], "region_name": "us-east-1"}})
