"""The local backend's job sandbox: a bubblewrap (``bwrap``) command line, built purely.

A sandboxed job sees the host's system directories read-only (its tools: ``/usr``,
``/etc``, the ``/bin`` and ``/lib`` links), its own job directory read-write (workspace,
temp dir, HOME), a private ``/tmp``, ``/dev`` and ``/proc`` — and nothing else of the
host: not the server's database, configuration or keys, not other jobs' directories. It
has its own pid, IPC, UTS and cgroup namespaces, so the server's processes (and their
``/proc/<pid>/environ``) are out of its sight and reach, and it is init of its pid
namespace: when it exits the kernel kills whatever it left running. The network is
shared, as jobs fetch dependencies (docs/trust-model.md says what that leaves open).

It never runs as the server's user. Started by root, ``bwrap`` sets up the namespaces
and ``setpriv`` then drops to a dedicated unprivileged uid with no capabilities and
``no_new_privs`` (so setuid programs under ``/usr`` cannot raise it back). Started by
another user, ``bwrap`` uses a user namespace in which the job has a uid of its own: the
server's files outside the job's directory are not even visible, let alone owned.

Probing what works on this host is `probe_sandbox` (it runs programs); everything else
here is pure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# 65532 is the "nonroot" uid of distroless images: a well-known unprivileged id that no
# distribution hands out to its own daemons.
JOB_UID = JOB_GID = 65532
JOB_USER = "conveyor-job"
# A fresh Debian/Ubuntu PATH: the host's own PATH names directories the job cannot see.
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a job needs to run the host's tools; /bin, /sbin and /lib* are links into /usr on
# merged-/usr systems (kept as links) and directories elsewhere (bound read-only).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


@dataclass(frozen=True)
class HostPath:
    """A system path as it is on the host: a directory, or a symbolic link to ``link``."""

    path: str
    link: str | None = None


@dataclass(frozen=True)
class Sandbox:
    """How to sandbox jobs on this host (from `probe_sandbox`, or built by a test).

    ``setpriv`` set: bwrap runs with the server's root privileges and no user namespace,
    and setpriv drops to ``uid``/``gid`` — a different user on the host, who must own the
    job's directory (``owner``). ``setpriv`` None: a user namespace maps ``uid`` to the
    server's own uid (the only mapping an unprivileged bwrap may make)."""

    bwrap: str
    uid: int = JOB_UID
    gid: int = JOB_GID
    user: str = JOB_USER  # the uid's name inside (the host's when it names the uid)
    setpriv: str | None = None
    system: tuple[HostPath, ...] = ()
    # Read-only extras a working system needs, such as the directory a symlinked
    # /etc/resolv.conf points into (DNS would fail without it).
    extra_ro: tuple[str, ...] = ()
    # Files bound over /etc/passwd and /etc/group so the job's uid has a name (ssh, git
    # and `whoami` refuse a nameless user); None: the host's own have it.
    passwd: str | None = None
    group: str | None = None

    @property
    def owner(self) -> tuple[int, int] | None:
        """The host uid and gid the job's directory must belong to, if not the server's."""
        return (self.uid, self.gid) if self.setpriv else None

    @property
    def description(self) -> str:
        how = (f"uid {self.uid} via setpriv" if self.setpriv
               else f"uid {self.uid} in a user namespace")
        return f"bubblewrap sandbox ({how})"


def command(sandbox: Sandbox, *, job_dir: str, cwd: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` in ``cwd`` inside the sandbox, with ``job_dir`` (which
    holds ``cwd``) the only host directory it may write or even see."""
    cmd = [
        sandbox.bwrap,
        "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        # The command is init of the pid namespace (the script traps TERM there and the
        # kernel reaps the rest when it exits); bwrap kills it when the server dies.
        "--as-pid-1", "--die-with-parent",
    ]
    if sandbox.setpriv is None:
        cmd += ["--unshare-user", "--uid", str(sandbox.uid), "--gid", str(sandbox.gid)]
    for item in sandbox.system:
        if item.link is not None:
            cmd += ["--symlink", item.link, item.path]
        else:
            cmd += ["--ro-bind", item.path, item.path]
    for path in sandbox.extra_ro:
        cmd += ["--ro-bind", path, path]
    if sandbox.passwd is not None:
        cmd += ["--ro-bind", sandbox.passwd, "/etc/passwd"]
    if sandbox.group is not None:
        cmd += ["--ro-bind", sandbox.group, "/etc/group"]
    cmd += [
        "--proc", "/proc", "--dev", "/dev",
        # /tmp first: a job directory under the host's /tmp is then mounted on top of it.
        "--perms", "1777", "--tmpfs", "/tmp",
    ]
    # bwrap would make the directories above the job's 0700 and root's: the job's uid
    # could not walk down to its own directory.
    for parent in reversed(PurePosixPath(job_dir).parents):
        if str(parent) not in ("/", "/tmp"):
            cmd += ["--perms", "0755", "--dir", str(parent)]
    cmd += [
        "--bind", job_dir, job_dir,
        "--chdir", cwd,
        "--",
    ]
    if sandbox.setpriv is not None:
        cmd += [
            sandbox.setpriv, f"--reuid={sandbox.uid}", f"--regid={sandbox.gid}",
            "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
            "--",
        ]
    return [*cmd, *argv]


def with_job_user(passwd: str, group: str, uid: int = JOB_UID, gid: int = JOB_GID,
                  ) -> tuple[str | None, str | None]:
    """The host's passwd and group texts with an entry for the job's ids added, or None
    for a file that has one already (an id named on the host keeps its name)."""

    def ids(text: str, column: int) -> set[str]:
        rows = (line.split(":") for line in text.splitlines())
        return {row[column] for row in rows if len(row) > column}

    def add(text: str, line: str) -> str:
        return (text if not text or text.endswith("\n") else text + "\n") + line + "\n"

    new_passwd = None if str(uid) in ids(passwd, 2) else add(
        passwd, f"{JOB_USER}:x:{uid}:{gid}:Conveyor job:/tmp:/bin/sh")
    new_group = None if str(gid) in ids(group, 2) else add(group, f"{JOB_USER}:x:{gid}:")
    return new_passwd, new_group


def host_layout(root: str = "/") -> tuple[HostPath, ...]:
    """The system paths that exist under ``root``, links kept as links."""
    out = []
    for path in SYSTEM_PATHS:
        host = os.path.join(root, path.lstrip("/"))
        if os.path.islink(host):
            out.append(HostPath(path, os.readlink(host)))
        elif os.path.isdir(host):
            out.append(HostPath(path))
    return tuple(out)


def resolv_conf_dir() -> tuple[str, ...]:
    """The directory a symlinked /etc/resolv.conf points into (e.g. systemd-resolved's
    /run/systemd/resolve), which /etc alone does not bring into the sandbox."""
    if not os.path.islink("/etc/resolv.conf"):
        return ()
    target = os.path.dirname(os.path.realpath("/etc/resolv.conf"))
    inside = any(target == p or target.startswith(p + "/") for p in SYSTEM_PATHS)
    return () if inside or not os.path.isdir(target) else (target,)


def probe_sandbox(support_dir: Path) -> tuple[Sandbox | None, str]:
    """The sandbox this host allows, or None and the reason in one line.

    Writes the passwd/group overlays into ``support_dir`` (the server's private work
    directory) and runs a trial job in the sandbox, so a host where bwrap exists but may
    not create namespaces (a container without the privilege) is found at start."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bwrap (Debian package bubblewrap) is not installed"
    setpriv = shutil.which("setpriv") if os.geteuid() == 0 else None
    if os.geteuid() == 0 and setpriv is None:
        return None, "setpriv (util-linux) is not installed"
    passwd, group = with_job_user(_read("/etc/passwd"), _read("/etc/group"))
    support_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths: dict[str, str | None] = {}
    for name, text in (("passwd", passwd), ("group", group)):
        paths[name] = None
        if text is not None:
            path = support_dir / name
            path.write_text(text, encoding="utf-8")
            path.chmod(0o644)
            paths[name] = str(path)
    user = JOB_USER if passwd is not None else _user_name(JOB_UID)
    sandbox = Sandbox(bwrap=bwrap, user=user, setpriv=setpriv, system=host_layout(),
                      extra_ro=resolv_conf_dir(), passwd=paths["passwd"], group=paths["group"])
    trial = support_dir / "trial"
    trial.mkdir(exist_ok=True)
    argv = command(sandbox, job_dir=str(trial), cwd=str(trial), argv=["/bin/sh", "-c", "id -u"])
    try:
        done = subprocess.run(argv, capture_output=True, timeout=20, stdin=subprocess.DEVNULL,
                              env={"PATH": SANDBOX_PATH})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bwrap could not run: {exc}"
    finally:
        trial.rmdir()
    if done.returncode != 0 or done.stdout.strip() != str(sandbox.uid).encode():
        why = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        return None, f"bwrap could not set up a sandbox here: {why[-1] if why else done.returncode}"
    return sandbox, sandbox.description


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return JOB_USER


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""
