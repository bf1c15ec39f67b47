"""The environment a local job starts with: an allow-list, never the server's own.

Like GitHub's runner, a job gets what a shell needs to behave (PATH, locale, time zone,
proxies) and what the job is (HOME, TMPDIR, its workflow's env) — nothing else of the
server's environment: no ``CONVEYOR_*`` setting, no database URL, no token. PATH never
holds Conveyor's own virtualenv, so a job's ``pip install`` cannot change Conveyor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping

# Taken from the server's environment when set (the locale's LC_* are added by prefix).
PASSTHROUGH = (
    "LANG", "LANGUAGE", "TZ",
    # Jobs reach the network through the host's proxy, as on GitHub's runners.
    "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
)
# Taken too when the job runs as the server's user (no sandbox): they describe that user.
UNSANDBOXED_PASSTHROUGH = ("USER", "LOGNAME", "SHELL")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def conveyor_bin_dirs() -> tuple[str, ...]:
    """The directories that hold Conveyor's own interpreter, when it runs from a
    virtualenv (never the system's /usr/bin, which a job needs)."""
    dirs = []
    if sys.prefix != sys.base_prefix:
        dirs.append(os.path.join(sys.prefix, "bin"))
    venv = os.environ.get("VIRTUAL_ENV")
    if venv:
        dirs.append(os.path.join(venv, "bin"))
    return tuple(dirs)


def clean_path(path: str, drop: Iterable[str]) -> str:
    """``path`` without the directories in ``drop`` (compared once normalised) nor empty
    entries (an empty entry means the working directory: a planted binary would run)."""
    dropped = {os.path.normpath(d) for d in drop}
    kept = [p for p in path.split(os.pathsep) if p and os.path.normpath(p) not in dropped]
    return os.pathsep.join(kept) or DEFAULT_PATH


def job_environment(
    server_env: Mapping[str, str],
    *,
    home: str,
    temp: str,
    job_env: Mapping[str, str],
    container_env: Mapping[str, str] | None = None,
    sandbox_path: str | None = None,
    sandbox_user: str | None = None,
    drop_from_path: Iterable[str] = (),
) -> dict[str, str]:
    """The environment of one job's process.

    Layers, later ones winning: the allow-listed server variables; HOME; the job's
    ``container.env`` (a container's own env, under the workflow's as on GitHub, where
    steps run with ``docker exec -e``); the workflow and job env; the temp dir, which
    the runner script relies on. ``sandbox_path`` replaces the server's PATH, whose
    directories a sandboxed job cannot see; ``sandbox_user`` names the job's user."""
    env = {k: server_env[k] for k in PASSTHROUGH if k in server_env}
    env.update({k: v for k, v in server_env.items() if k.startswith("LC_")})
    if sandbox_path is not None:
        env["PATH"] = sandbox_path
    else:
        env["PATH"] = clean_path(server_env.get("PATH", ""), drop_from_path)
    if sandbox_user is not None:
        env["USER"] = env["LOGNAME"] = sandbox_user
        env["SHELL"] = "/bin/sh"
    else:
        env.update({k: server_env[k] for k in UNSANDBOXED_PASSTHROUGH if k in server_env})
    env["HOME"] = home
    env.update(container_env or {})
    env.update(job_env)
    env["CONVEYOR_TEMP_DIR"] = env["TMPDIR"] = temp
    return env
