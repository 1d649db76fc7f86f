"""The BI side's generated secrets, stored like the warehouse's (.local/secrets/bi/, mode 0600, git-ignored).

Superset's admin password, its session secret key, the passwords of its municipality and BI users, and of
the warehouse logins it connects with: each is 32 random bytes (URL-safe), generated once, never a literal
in git. A deployment gives its own in the environment instead (TRIVSEL_BI_<NAME>, e.g.
TRIVSEL_BI_SUPERSET_ADMIN for the admin password).
"""

from __future__ import annotations

import os
import re
import secrets as _secrets
from pathlib import Path

from trivsel import settings


def secrets_dir() -> Path:
    return settings.home() / "secrets" / "bi"


def env_name(name: str) -> str:
    return "TRIVSEL_BI_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def secret(name: str) -> str:
    """The secret `name`: TRIVSEL_BI_<NAME> if set, else its file, generated on first use."""
    given = os.environ.get(env_name(name))
    if given:
        return given
    path = secrets_dir() / f"{name}.password"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # generated concurrently
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(_secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def secret_file(name: str) -> Path:
    return secrets_dir() / f"{name}.password"
