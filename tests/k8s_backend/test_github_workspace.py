"""`github.workspace` and the GITHUB_* variables on the Kubernetes backend."""

from __future__ import annotations

from k8s.manifests import WORKSPACE
from support.harness import Engine
from support.k8s_emulator import Emulator
from tests.engine.test_github_workspace import GITHUB_VARIABLES, seen


def test_github_workspace_is_the_pods_workspace_and_the_variables_match_local(
        k8s_eng: Engine, emulator: Emulator) -> None:
    values, names = seen(k8s_eng)
    # In the pod's own file system: its emptyDir mount, the container's workingDir.
    assert values["expr"] == values["env"] == WORKSPACE
    # The emulator runs the pod as a local process with the mount moved under its own
    # root: the directory the job is in is that same mount (a real pod sees /workspace).
    assert values["var"] == values["pwd"]
    assert values["pwd"].endswith(WORKSPACE)
    # The same GITHUB_* variables as a local job (tests/engine/test_github_workspace.py).
    assert names == GITHUB_VARIABLES
