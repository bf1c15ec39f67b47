"""The job graph of a plan: order, readiness, dependents, and results of needs."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from workflow.model import Plan

RESULTS = frozenset({"success", "failure", "cancelled", "skipped"})


def find_cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Each dependency cycle once, as a path that ends where it starts (``a b c a``).

    ``graph`` maps a node to the nodes it needs; unknown targets are ignored.
    """
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    cycles: list[list[str]] = []
    for root in graph:
        if color[root] != white:
            continue
        # Iterative DFS: a deep chain of needs must not hit the recursion limit.
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        color[root] = grey
        while stack:
            node, i = stack[-1]
            targets = [t for t in graph[node] if t in graph]
            if i < len(targets):
                stack[-1] = (node, i + 1)
                target = targets[i]
                if color[target] == grey:
                    cycles.append([*path[path.index(target) :], target])
                elif color[target] == white:
                    color[target] = grey
                    stack.append((target, 0))
                    path.append(target)
            else:
                color[node] = black
                stack.pop()
                path.pop()
    return cycles


def topological(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes in an order where every node comes after what it needs; ties keep the
    order of ``graph``. Raises ValueError on a cycle."""
    remaining = {node: {t for t in needs if t in graph} for node, needs in graph.items()}
    order: list[str] = []
    done: set[str] = set()
    while remaining:
        batch = [node for node, needs in remaining.items() if needs <= done]
        if not batch:
            raise ValueError(f"dependency cycle among {sorted(remaining)}")
        for node in batch:
            del remaining[node]
        done.update(batch)
        order.extend(batch)
    return order


def aggregate(results: Collection[str]) -> str:
    """One result for a group of matrix combinations, as GitHub's `needs.<id>.result`."""
    if "failure" in results:
        return "failure"
    if "cancelled" in results:
        return "cancelled"
    if results and all(r == "skipped" for r in results):
        return "skipped"
    return "success"


class Dag:
    """The expanded jobs of a plan and what each one waits for."""

    def __init__(self, plan: Plan) -> None:
        self._needs: dict[str, tuple[str, ...]] = {job.key: job.needs for job in plan.jobs}
        self._ids: dict[str, str] = {job.key: job.job_id for job in plan.jobs}
        self._order = topological(self._needs)
        self._position = {key: i for i, key in enumerate(self._order)}
        self._dependents: dict[str, set[str]] = {key: set() for key in self._needs}
        for key, needs in self._needs.items():
            for need in needs:
                self._dependents[need].add(key)

    def order(self) -> list[str]:
        """A topological order of job keys."""
        return list(self._order)

    def ready(self, done: Mapping[str, str], started: Collection[str] = ()) -> list[str]:
        """Keys neither done nor started whose needs are all done, in topological order."""
        started_set = set(started)
        return [
            key
            for key in self._order
            if key not in done
            and key not in started_set
            and all(need in done for need in self._needs[key])
        ]

    def in_order(self, keys: Collection[str]) -> list[str]:
        """``keys`` sorted in the topological order."""
        return sorted(keys, key=self._position.__getitem__)

    def direct_dependents(self, key: str) -> list[str]:
        """The jobs that name ``key`` in their needs, in topological order."""
        return self.in_order(self._dependents[key])

    def dependents(self, key: str) -> set[str]:
        """Every job that waits for ``key``, directly or transitively."""
        found: set[str] = set()
        todo = [key]
        while todo:
            for dependent in self._dependents[todo.pop()]:
                if dependent not in found:
                    found.add(dependent)
                    todo.append(dependent)
        return found

    def needs_results(self, key: str, done: Mapping[str, str]) -> dict[str, str]:
        """The result of each needed job id (matrix combinations aggregated)."""
        grouped: dict[str, list[str]] = {}
        for need in self._needs[key]:
            grouped.setdefault(self._ids[need], []).append(done.get(need, "skipped"))
        return {job_id: aggregate(results) for job_id, results in grouped.items()}
