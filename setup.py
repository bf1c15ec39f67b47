"""The wheel's layout; the metadata is in pyproject.toml.

A wheel puts the project's packages (the repository's top-level folders) under
``conveyor_ci/_lib``, where only the ``conveyor`` command looks (conveyor_ci/__init__.py),
so their generic names never collide with another distribution's. The editable install
of a checkout keeps them at the top level, as the folders are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LAUNCHER = "conveyor_ci"


class build_private(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        build = Path(self.build_lib)
        private = build / LAUNCHER / "_lib"
        shutil.rmtree(private, ignore_errors=True)
        private.mkdir(parents=True)
        for top in sorted({name.split(".")[0] for name in self.packages or ()} - {LAUNCHER}):
            shutil.move(build / top, private / top)


setup(cmdclass={"build_py": build_private})
