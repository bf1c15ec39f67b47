"""Test and benchmark support, shared by tests/ and bench/ and never shipped.

The engine harness, the end-to-end cluster of real processes, the service addresses,
and the Kubernetes API emulator (``python -m support.k8s_emulator``) live here so that
bench/ need not import tests/ and the wheel carries no test tools.
"""
