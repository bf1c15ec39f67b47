"""Observability of a Conveyor process: Prometheus metrics, health probes, JSON logs.

``observability.metrics`` holds the process's metrics and the one-line functions the
engine calls; ``observability.server`` serves ``/metrics``, ``/healthz`` and ``/readyz``;
``observability.logs`` configures text or JSON logging.
"""
