"""A Kubernetes API emulator for tests: the unchanged official client talks to it over
HTTP, and it runs each pod's container command as a local process.

Embedded: ``with Emulator() as emu: Configuration(host=emu.url)``. As a process:
``python -m support.k8s_emulator --port 0 --workdir DIR`` (first stdout line: ``listening on URL``),
driven through ``RemoteEmulator(url)``."""

from support.k8s_emulator.remote import RemoteEmulator, spawn_emulator
from support.k8s_emulator.routes import Settings
from support.k8s_emulator.server import Emulator

__all__ = ["Emulator", "RemoteEmulator", "Settings", "spawn_emulator"]
