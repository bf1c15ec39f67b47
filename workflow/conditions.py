"""Whether a job runs, by GitHub's rules for `if:` and the status functions.

A condition without a status function gets an implicit ``success() && (…)``, so a job
whose needs failed is skipped unless its `if:` uses ``always()``, ``failure()`` or
``cancelled()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from workflow.expressions import (
    ExpressionError,
    called_functions,
    evaluate_node,
    parse,
    to_bool,
)
from workflow.model import JobSpec

STATUS = frozenset({"success", "failure", "always", "cancelled"})


def job_should_run(
    job: JobSpec,
    needs_results: Mapping[str, str],
    contexts: Mapping[str, Any],
    *,
    cancelled: bool = False,
) -> tuple[bool, str]:
    """(run, reason when not): evaluates the job's `if` (default ``success()``).

    ``needs_results`` maps each needed job id to 'success' | 'failure' | 'cancelled' |
    'skipped'; ``contexts`` are the expression contexts (``needs`` is filled from
    ``needs_results`` when absent); ``cancelled`` says the build is being cancelled.
    """
    expression = job.if_ or "success()"
    needs_ok = not cancelled and all(r == "success" for r in needs_results.values())
    functions: dict[str, Callable[..., Any]] = {
        "success": lambda: needs_ok,
        # Once the build is cancelled only always() and cancelled() can start a job.
        "failure": lambda: not cancelled and any(r == "failure" for r in needs_results.values()),
        "always": lambda: True,
        "cancelled": lambda: cancelled,
    }
    values = dict(contexts)
    values.setdefault(
        "needs", {job_id: {"result": r, "outputs": {}} for job_id, r in needs_results.items()}
    )
    try:
        node = parse(expression, functions=STATUS)
        used = called_functions(node) & STATUS
        implicit = not used
        if implicit and not needs_ok:
            return False, _status_reason(needs_results, cancelled)
        result = to_bool(evaluate_node(node, values, functions=functions, expression=expression))
    except ExpressionError as exc:
        return False, f"if: {exc}"
    if result:
        return True, ""
    if cancelled and not used & {"always", "cancelled"}:
        return False, "build was cancelled"
    if "success" in used and not needs_ok:
        return False, _status_reason(needs_results, cancelled)
    return False, f"if: {expression} was false"


def _status_reason(needs_results: Mapping[str, str], cancelled: bool) -> str:
    if cancelled:
        return "build was cancelled"
    for wanted, verb in (
        ("failure", "failed"),
        ("cancelled", "was cancelled"),
        ("skipped", "was skipped"),
    ):
        for job_id, result in needs_results.items():
            if result == wanted:
                return f"needs '{job_id}' {verb}"
    return "needs did not succeed"
