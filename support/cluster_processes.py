"""The processes of an end-to-end cluster, and the admin token its clients use."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Process:
    """One Conveyor server process and where its output goes."""

    name: str
    role: str
    workdir: Path
    listen: str  # host:port; port 0 until the first start picked one
    popen: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    address: str = ""
    exit_codes: list[int] = field(default_factory=list)

    @property
    def stdout(self) -> Path:
        return self.workdir / f"stdout.{self.incarnation}.log"

    @property
    def stderr(self) -> Path:
        return self.workdir / f"stderr.{self.incarnation}.log"

    @property
    def executor_id(self) -> str:
        return f"{self.name}-{self.incarnation}"

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` of every incarnation's stdout and stderr."""
        out = [f"===== {self.name} ({self.role}), exit codes so far {self.exit_codes} ====="]
        for incarnation in range(1, self.incarnation + 1):
            for stream in ("stdout", "stderr"):
                path = self.workdir / f"{stream}.{incarnation}.log"
                if path.exists():
                    text = [line for line in path.read_text(errors="replace").splitlines()
                            if " pika." not in line][-lines:]  # pika's own logging: noise
                    out.append(f"--- {path.name} (last {len(text)} lines)")
                    out.extend(text)
        return "\n".join(out)


def issue_admin_token(database_url: str) -> str:
    """A fresh instance-admin bearer token in ``database_url``, as an operator gets one
    (`conveyor admin bootstrap`)."""
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "admin", "bootstrap", "--name", "e2e-admin",
         "--force", "--json", "--database-url", database_url],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"conveyor admin bootstrap failed:\n{out.stdout}{out.stderr}")
    secret: str = json.loads(out.stdout)["secret"]
    return secret
