"""The ``conveyor`` command's entry point, and the one top-level name the installed
distribution (``conveyor-ci``) owns.

The project's modules are importable by the names of the repository's folders (``cli``,
``store``, ``workflow``…): names so generic that other distributions use them too. A
wheel therefore installs them in the private directory ``conveyor_ci/_lib``, which is on
no one's ``sys.path``; the command puts it first on its own path, then runs
``cli.main``. Other programs in the environment import their own ``cli`` and ``store``,
and Conveyor's never replace them. In a checkout (``make install``'s editable install)
there is no ``_lib``: the folders are importable as they are. See README, Packaging.
"""

from __future__ import annotations

import sys
from pathlib import Path

LIB = Path(__file__).resolve().parent / "_lib"


def main() -> int:
    if LIB.is_dir() and str(LIB) not in sys.path:
        sys.path.insert(0, str(LIB))
    from cli.main import main as conveyor

    return conveyor()
