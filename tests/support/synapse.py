"""A throwaway Synapse homeserver for integration tests.

The server runs as a child process (``python -m synapse.app.homeserver``) bound to
``127.0.0.1`` on a free port, with a generated config in a temporary directory:
SQLite database, no federation, no trusted key servers, no presence, no URL
previews, no metrics, and rate limits relaxed far beyond anything a test does.

Typical use from a session-scoped pytest fixture::

    @pytest.fixture(scope="session")
    def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
        with running_or_skip(tmp_path_factory.mktemp("synapse")) as server:
            yield server

and then, in a test::

    bot = synapse.register("bot", "secret")
    client = nio.AsyncClient(synapse.base_url, bot.user_id)
    client.restore_login(bot.user_id, bot.device_id, bot.access_token)

Only ``127.0.0.1`` is ever contacted. Everything the server writes (database,
media, logs, pid file) stays in the directory passed to :meth:`SynapseServer.running`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import yaml

__all__ = [
    "RegisteredUser",
    "SynapseServer",
    "SynapseStartError",
    "ci_requires_synapse",
    "running_or_skip",
]

#: Server name used in generated user ids (``@bot:localhost``).
DEFAULT_SERVER_NAME: Final = "localhost"
#: How long to wait for ``/_matrix/client/versions`` to answer after spawning.
DEFAULT_START_TIMEOUT: Final = 60.0
#: How long to wait after SIGTERM before sending SIGKILL.
DEFAULT_STOP_TIMEOUT: Final = 10.0

# A rate limit no test will ever hit.
_UNLIMITED: Final[dict[str, float]] = {"per_second": 10_000, "burst_count": 100_000}

# Run the homeserver exactly as ``python -m synapse.app.homeserver`` would, but first
# ask Linux to SIGTERM it when the process that spawned it dies, so a hard-killed
# pytest run does not leave an orphaned server behind.
_BOOTSTRAP: Final = """\
import runpy, signal, sys
if sys.platform.startswith("linux"):
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass
sys.argv = ["synapse.app.homeserver", *sys.argv[1:]]
runpy.run_module("synapse.app.homeserver", run_name="__main__", alter_sys=True)
"""


class SynapseStartError(RuntimeError):
    """Synapse is not installed, or the homeserver did not come up in time."""


@dataclass(frozen=True, slots=True)
class RegisteredUser:
    """A user created through the shared-secret admin registration API."""

    user_id: str
    access_token: str
    device_id: str
    password: str
    admin: bool


def ci_requires_synapse() -> bool:
    """True when running under CI (``CI=true``), where an unavailable Synapse is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_signing_key(path: Path) -> None:
    """Write an ed25519 signing key in Synapse's format.

    The format is ``ed25519 <key id> <unpadded base64 of the 32-byte seed>``; any 32
    random bytes are a valid seed, so no subprocess or crypto library is needed.
    """
    seed = base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
    path.write_text(f"ed25519 a_test {seed}\n", encoding="utf-8")


def _log_config(log_file: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                "%(request)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(log_file),
                "encoding": "utf8",
            }
        },
        "loggers": {
            "synapse.storage.SQL": {"level": "WARNING"},
            "twisted": {"level": "WARNING"},
        },
        "root": {"level": "WARNING", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def _homeserver_config(
    base: Path, *, server_name: str, port: int, shared_secret: str
) -> dict[str, Any]:
    return {
        "server_name": server_name,
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(base / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(base / "homeserver.db")}},
        "log_config": str(base / "log.config.yaml"),
        "media_store_path": str(base / "media_store"),
        "signing_key_path": str(base / "signing.key"),
        "registration_shared_secret": shared_secret,
        "macaroon_secret_key": secrets.token_hex(32),
        "form_secret": secrets.token_hex(32),
        "enable_registration": False,
        "report_stats": False,
        "enable_metrics": False,
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        # Never talk to another homeserver or a key server.
        "federation_domain_whitelist": [],
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "allow_public_rooms_over_federation": False,
        # Cheap password hashing: registration/login are on the hot path of tests.
        "bcrypt_rounds": 4,
        "rc_message": _UNLIMITED,
        "rc_registration": _UNLIMITED,
        "rc_registration_token_validity": _UNLIMITED,
        "rc_login": {
            "address": _UNLIMITED,
            "account": _UNLIMITED,
            "failed_attempts": _UNLIMITED,
        },
        "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
        "rc_joins_per_room": _UNLIMITED,
        "rc_invites": {
            "per_room": _UNLIMITED,
            "per_user": _UNLIMITED,
            "per_issuer": _UNLIMITED,
        },
        "rc_third_party_invite": _UNLIMITED,
        "rc_admin_redaction": _UNLIMITED,
        "rc_3pid_validation": _UNLIMITED,
        "rc_presence": {"per_user": _UNLIMITED},
        "rc_room_creation": _UNLIMITED,
        "rc_key_requests": _UNLIMITED,
        "rc_media_create": _UNLIMITED,
        "rc_delayed_event_mgmt": _UNLIMITED,
        "rc_reports": _UNLIMITED,
        "rc_user_directory": _UNLIMITED,
        "rc_profile": _UNLIMITED,
    }


class SynapseServer:
    """A running Synapse homeserver child process; create with :meth:`running`."""

    def __init__(
        self,
        base_dir: Path,
        *,
        server_name: str = DEFAULT_SERVER_NAME,
        port: int | None = None,
    ) -> None:
        self._base_dir = base_dir
        self._server_name = server_name
        self._port = port if port is not None else _free_port()
        self._shared_secret = secrets.token_hex(32)
        self._process: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=self.base_url, timeout=10.0, trust_env=False)
        #: Seconds from spawning the process until the client API answered.
        self.startup_seconds: float | None = None

    # -- public API ------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def running(
        cls,
        tmp_dir: Path,
        *,
        server_name: str = DEFAULT_SERVER_NAME,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> Iterator[SynapseServer]:
        """Start a homeserver with its state in ``tmp_dir``; stop it on exit.

        Raises :class:`SynapseStartError` if Synapse is missing or fails to start.
        Should the chosen port be taken between picking and binding, another one is
        tried (three attempts in all).
        """
        attempts = 3
        for attempt in range(attempts):
            server = cls(Path(tmp_dir) / f"hs{attempt}", server_name=server_name)
            try:
                server.start(timeout=start_timeout)
            except SynapseStartError as exc:
                server.stop()
                if "Address already in use" in str(exc) and attempt + 1 < attempts:
                    continue
                raise
            except BaseException:
                server.stop()
                raise
            try:
                yield server
            finally:
                server.stop()
            return

    @property
    def base_url(self) -> str:
        """Client-server API root, e.g. ``http://127.0.0.1:8448`` (no trailing slash)."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def server_name(self) -> str:
        """The homeserver's name, the part after ``:`` in user ids."""
        return self._server_name

    @property
    def port(self) -> int:
        """TCP port of the client listener on 127.0.0.1."""
        return self._port

    @property
    def base_dir(self) -> Path:
        """Directory holding config, database, media store and logs."""
        return self._base_dir

    @property
    def log_file(self) -> Path:
        """Synapse's own log (WARNING and above)."""
        return self._base_dir / "homeserver.log"

    @property
    def pid(self) -> int | None:
        """Process id of the running homeserver, ``None`` when not running."""
        return self._process.pid if self._process is not None else None

    def user_id(self, localpart: str) -> str:
        """Full Matrix user id for ``localpart`` on this server."""
        return f"@{localpart}:{self._server_name}"

    def register(self, localpart: str, password: str, admin: bool = False) -> RegisteredUser:
        """Create a user via ``/_synapse/admin/v1/register`` (shared-secret registration).

        Returns the new user's id with an access token and device id ready for
        ``nio.AsyncClient.restore_login``.
        """
        response = self._http.get("/_synapse/admin/v1/register")
        response.raise_for_status()
        nonce: str = response.json()["nonce"]
        mac = hmac.new(self._shared_secret.encode("utf-8"), digestmod=hashlib.sha1)
        for part in (nonce, localpart, password):
            mac.update(part.encode("utf-8"))
            mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        response = self._http.post(
            "/_synapse/admin/v1/register",
            json={
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"registering {localpart!r} failed: HTTP {response.status_code} {response.text}"
            )
        body = response.json()
        return RegisteredUser(
            user_id=body["user_id"],
            access_token=body["access_token"],
            device_id=body["device_id"],
            password=password,
            admin=admin,
        )

    def override_ratelimit(
        self,
        admin: RegisteredUser,
        user_id: str,
        *,
        messages_per_second: int,
        burst_count: int,
    ) -> None:
        """Give ``user_id`` its own message rate limit (admin API), e.g. to provoke a 429.

        Synapse accepts only non-negative integers here, so the strictest limit is
        ``messages_per_second=1, burst_count=1``. ``messages_per_second=0`` removes
        every rate limit for that user instead.
        """
        response = self._http.post(
            f"/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            headers={"Authorization": f"Bearer {admin.access_token}"},
            json={"messages_per_second": messages_per_second, "burst_count": burst_count},
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"overriding the rate limit of {user_id} failed: "
                f"HTTP {response.status_code} {response.text}"
            )

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Write the config, spawn the homeserver and wait until it answers."""
        if self._process is not None:
            raise RuntimeError("Synapse already started")
        if importlib.util.find_spec("synapse") is None:
            raise SynapseStartError(
                "matrix-synapse is not installed in this interpreter "
                f"({sys.executable}); pip install 'matrix-synapse>=1.110'"
            )
        config_path = self._write_config()
        output = (self._base_dir / "stdout.log").open("wb")
        started = time.monotonic()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, "-c", str(config_path)],
                cwd=self._base_dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self._child_env(),
            )
        finally:
            output.close()
        self._wait_until_ready(started, timeout)
        self.startup_seconds = time.monotonic() - started

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop the homeserver: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        self._http.close()

    # -- internals -----------------------------------------------------------------------

    def _write_config(self) -> Path:
        base = self._base_dir
        (base / "media_store").mkdir(parents=True, exist_ok=True)
        _write_signing_key(base / "signing.key")
        (base / "log.config.yaml").write_text(
            yaml.safe_dump(_log_config(self.log_file)), encoding="utf-8"
        )
        config = _homeserver_config(
            base,
            server_name=self._server_name,
            port=self._port,
            shared_secret=self._shared_secret,
        )
        config_path = base / "homeserver.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return config_path

    def _child_env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # Keep the server from routing anything through a proxy, and keep the
            # test run's warning filters from turning server-side warnings into errors.
            if key.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "PYTHONWARNINGS"}
        }
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        # At start-up Synapse builds a version string by running `git rev-parse` and
        # `git describe --dirty` next to its installed package; inside a project venv
        # that finds the project's own repository, and `describe --dirty` may refresh
        # (rewrite) its index. Point git at a repository that does not exist instead.
        env["GIT_DIR"] = str(self._base_dir / "no-such-git-dir")
        env["GIT_OPTIONAL_LOCKS"] = "0"
        env.pop("GIT_WORK_TREE", None)
        return env

    def _wait_until_ready(self, started: float, timeout: float) -> None:
        assert self._process is not None
        deadline = started + timeout
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise SynapseStartError(
                    f"Synapse exited with code {code} during start-up:\n{self._log_tail()}"
                )
            try:
                response = self._http.get("/_matrix/client/versions", timeout=1.0)
            except httpx.TransportError as exc:
                last_problem = repr(exc)
            else:
                if response.status_code == 200 and "versions" in response.text:
                    return
                last_problem = f"HTTP {response.status_code}"
            time.sleep(0.05)
        raise SynapseStartError(
            f"Synapse did not answer on {self.base_url} within {timeout:g}s "
            f"({last_problem}):\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 40) -> str:
        chunks = []
        for path in (self._base_dir / "stdout.log", self.log_file):
            with contextlib.suppress(OSError):
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
                chunks.append(f"--- {path.name} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(chunks) or "(no output)"


@contextlib.contextmanager
def running_or_skip(tmp_dir: Path, **kwargs: Any) -> Iterator[SynapseServer]:
    """Like :meth:`SynapseServer.running`, but ``pytest.skip`` if Synapse cannot start.

    Under CI (``CI=true``) the :class:`SynapseStartError` propagates instead, so a
    broken homeserver fails the run rather than silently skipping the Matrix tests.
    """
    import pytest

    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(SynapseServer.running(tmp_dir, **kwargs))
        except SynapseStartError as exc:
            if ci_requires_synapse():
                raise
            pytest.skip(f"Synapse homeserver unavailable: {exc}")
        yield server
