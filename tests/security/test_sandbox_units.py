"""The pure parts of job isolation: the sandbox's command line, the job's environment,
the trusted flag, the secrets the server forgets and the single-user admission."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from actors.backends.local.job_env import (
    DEFAULT_PATH,
    clean_path,
    conveyor_bin_dirs,
    job_environment,
)
from actors.backends.local.policy import single_user
from actors.backends.local.sandbox import (
    JOB_UID,
    SANDBOX_PATH,
    HostPath,
    Sandbox,
    command,
    host_layout,
    with_job_user,
)
from actors.messages import RunJob
from runtime_config import Config, ConfigError, forget_secrets

SYSTEM = (HostPath("/usr"), HostPath("/bin", "usr/bin"), HostPath("/lib", "usr/lib"),
          HostPath("/etc"))
JOB = "/srv/conveyor/work/b1-j2-a1"


def _pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def _sandbox(**overrides: object) -> Sandbox:
    values: dict[str, object] = {"bwrap": "/usr/bin/bwrap", "system": SYSTEM,
                                 "setpriv": "/usr/bin/setpriv"}
    values.update(overrides)
    return Sandbox(**values)  # type: ignore[arg-type]


def test_the_job_directory_is_the_only_host_directory_it_may_write() -> None:
    argv = command(_sandbox(), job_dir=JOB, cwd=f"{JOB}/workspace", argv=["/bin/sh", "x"])
    assert _pairs(argv, "--bind") == [(JOB, JOB)]
    assert _pairs(argv, "--ro-bind") == [("/usr", "/usr"), ("/etc", "/etc")]
    assert _pairs(argv, "--symlink") == [("usr/bin", "/bin"), ("usr/lib", "/lib")]
    assert argv[argv.index("--chdir") + 1] == f"{JOB}/workspace"
    assert argv[-2:] == ["/bin/sh", "x"]
    # A private /tmp, mounted before the job directory (which may live under /tmp), and
    # the directories above the job's walkable by its uid.
    assert argv.index("/tmp") < argv.index("--bind")
    dirs = [(argv[i - 1], argv[i + 1]) for i, a in enumerate(argv) if a == "--dir"]
    assert dirs == [("0755", "/srv"), ("0755", "/srv/conveyor"), ("0755", "/srv/conveyor/work")]


def test_the_job_has_its_own_pid_namespace_and_dies_with_the_server() -> None:
    argv = command(_sandbox(), job_dir=JOB, cwd=JOB, argv=["true"])
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--as-pid-1",
                 "--die-with-parent", "--proc"):
        assert flag in argv
    assert "--unshare-net" not in argv  # jobs fetch dependencies


def test_as_root_setpriv_drops_to_the_job_uid_with_nothing_to_regain() -> None:
    sandbox = _sandbox()
    argv = command(sandbox, job_dir=JOB, cwd=JOB, argv=["true"])
    tail = argv[argv.index("--", argv.index("--chdir")) + 1:]
    assert tail == ["/usr/bin/setpriv", f"--reuid={JOB_UID}", f"--regid={JOB_UID}",
                    "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                    "--no-new-privs", "--", "true"]
    assert "--unshare-user" not in argv
    assert sandbox.owner == (JOB_UID, JOB_UID)


def test_without_root_a_user_namespace_gives_the_job_its_uid() -> None:
    sandbox = _sandbox(setpriv=None)
    argv = command(sandbox, job_dir=JOB, cwd=JOB, argv=["true"])
    assert "setpriv" not in " ".join(argv)
    i = argv.index("--unshare-user")
    assert argv[i + 1:i + 5] == ["--uid", str(JOB_UID), "--gid", str(JOB_UID)]
    assert sandbox.owner is None  # the server's uid is the job's outside


def test_overlays_are_bound_read_only_over_the_hosts_files() -> None:
    sandbox = _sandbox(passwd="/w/.sandbox/passwd", group="/w/.sandbox/group",
                       extra_ro=("/run/systemd/resolve",))
    pairs = _pairs(command(sandbox, job_dir=JOB, cwd=JOB, argv=["true"]), "--ro-bind")
    assert ("/w/.sandbox/passwd", "/etc/passwd") in pairs
    assert ("/w/.sandbox/group", "/etc/group") in pairs
    assert ("/run/systemd/resolve", "/run/systemd/resolve") in pairs
    # The overlays come after /etc, or /etc would hide them.
    assert pairs.index(("/etc", "/etc")) < pairs.index(("/w/.sandbox/passwd", "/etc/passwd"))


def test_the_job_user_is_added_once() -> None:
    passwd, group = with_job_user("root:x:0:0::/root:/bin/sh", "root:x:0:\n")
    assert passwd is not None and passwd.splitlines()[-1].startswith(f"conveyor-job:x:{JOB_UID}:")
    assert group is not None and group.endswith(f"conveyor-job:x:{JOB_UID}:\n")
    named = f"nonroot:x:{JOB_UID}:{JOB_UID}::/home/nonroot:/bin/sh\n"
    assert with_job_user(named, f"nonroot:x:{JOB_UID}:\n") == (None, None)


def test_host_layout_keeps_links_as_links(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "lib64").mkdir()
    assert host_layout(str(tmp_path)) == (
        HostPath("/usr"), HostPath("/bin", "usr/bin"), HostPath("/lib64"), HostPath("/etc"))


SERVER_ENV = {
    "PATH": f"{sys.prefix}/bin::/usr/local/bin:/usr/bin:/bin",
    "HOME": "/root", "LANG": "C.UTF-8", "LC_TIME": "en_GB.UTF-8", "TZ": "UTC",
    "USER": "ci", "https_proxy": "http://proxy:3128",
    "CONVEYOR_INTERNAL_TOKEN": "cvy_secret", "CONVEYOR_DATABASE_URL": "postgresql://u:pw@db/x",
    "AWS_SECRET_ACCESS_KEY": "aws", "VIRTUAL_ENV": sys.prefix, "PYTHONPATH": "/srv/app",
}


def test_a_job_gets_an_allow_list_of_the_servers_environment() -> None:
    env = job_environment(SERVER_ENV, home="/w/j", temp="/w/j/tmp", job_env={"A": "1"},
                          drop_from_path=[f"{sys.prefix}/bin"])
    assert env == {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_TIME": "en_GB.UTF-8",
        "TZ": "UTC", "USER": "ci", "https_proxy": "http://proxy:3128", "HOME": "/w/j",
        "A": "1", "TMPDIR": "/w/j/tmp", "CONVEYOR_TEMP_DIR": "/w/j/tmp",
    }


def test_a_sandboxed_job_gets_the_sandboxs_path_and_user() -> None:
    env = job_environment(SERVER_ENV, home="/w/j", temp="/w/j/tmp", job_env={},
                          sandbox_path=SANDBOX_PATH, sandbox_user="conveyor-job")
    assert env["PATH"] == SANDBOX_PATH
    assert (env["USER"], env["LOGNAME"], env["SHELL"]) == ("conveyor-job",) * 2 + ("/bin/sh",)


def test_container_env_is_under_the_job_env_and_the_temp_dir_is_forced() -> None:
    env = job_environment({}, home="/h", temp="/t",
                          container_env={"C": "container", "BOTH": "container", "HOME": "/c"},
                          job_env={"BOTH": "job", "TMPDIR": "/elsewhere"})
    assert (env["C"], env["BOTH"], env["HOME"], env["TMPDIR"]) == ("container", "job", "/c", "/t")


def test_clean_path_drops_conveyors_bin_and_empty_entries() -> None:
    assert clean_path("/v/bin:/usr/bin::/v/bin/", ["/v/bin"]) == "/usr/bin"
    assert clean_path("/v/bin", ["/v/bin"]) == DEFAULT_PATH
    assert clean_path("", []) == DEFAULT_PATH


def test_conveyors_venv_is_named_when_it_runs_from_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTUAL_ENV", "/opt/venv")
    assert os.path.join("/opt/venv", "bin") in conveyor_bin_dirs()
    if sys.prefix != sys.base_prefix:
        assert os.path.join(sys.prefix, "bin") in conveyor_bin_dirs()


@pytest.mark.parametrize(("text", "value"), [("1", True), ("true", True), ("0", False),
                                             ("no", False)])
def test_local_trusted_flag(text: str, value: bool) -> None:
    assert Config.from_env({"CONVEYOR_LOCAL_TRUSTED": text}).local_trusted is value


def test_local_trusted_defaults_to_false_and_names_a_bad_value() -> None:
    assert Config.from_env({}).local_trusted is False
    with pytest.raises(ConfigError, match="CONVEYOR_LOCAL_TRUSTED must be 1 or 0"):
        Config.from_env({"CONVEYOR_LOCAL_TRUSTED": "maybe"})


def test_the_server_forgets_its_secrets_once_read() -> None:
    environ = {"CONVEYOR_INTERNAL_TOKEN": "t", "CONVEYOR_DATABASE_URL": "postgresql://u:p@h/d",
               "CONVEYOR_AMQP_URL": "amqp://u:p@h", "CONVEYOR_LISTEN": ":1", "PATH": "/bin"}
    config = Config.from_env(environ)
    assert sorted(forget_secrets(environ)) == [
        "CONVEYOR_AMQP_URL", "CONVEYOR_DATABASE_URL", "CONVEYOR_INTERNAL_TOKEN"]
    assert environ == {"CONVEYOR_LISTEN": ":1", "PATH": "/bin"}
    assert config.internal_token == "t"


def _run() -> RunJob:
    return RunJob(build_id=1, job_row_id=1, job_key="a", attempt=1, name="b1-j1-a1",
                  script="", image=None, env={}, timeout_s=60, nonce="n")


def test_without_a_sandbox_jobs_run_only_for_a_single_user() -> None:
    users = [1]
    admit = single_user("bwrap is not installed", count=lambda: users[0])
    assert admit(_run()) is None
    users[0] = 2
    refusal = admit(_run())
    assert refusal is not None
    assert "bwrap is not installed" in refusal and "CONVEYOR_LOCAL_TRUSTED=1" in refusal
