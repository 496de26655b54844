"""The work budget of a sort: runs, not seconds.

A *run* is one group update over the whole grid. ShuffleSoftSort's ``budget`` of runs is shared equally by its
stages (`Budget.share`), so the same input, options and seed give the same order on any machine, however busy;
``max_seconds`` is an opt-in wall-clock cap on top (the order then depends on the machine). Every run keeps a
permutation and only accepts group moves that lower its cost, so any budget returns a complete order no worse
(in that loss) than its start.
"""

from __future__ import annotations

import time


class Budget:
    """What a sort may still spend: ``runs`` (work: one run = one group update over the grid; None:
    no limit) and, only when asked for, wall-clock ``seconds``. The order a budget of runs gives
    does not depend on the machine; a time cap does, so it is off unless set. A share (`share`,
    `part`) spends from its parent too."""

    def __init__(self, runs: int | None = None, seconds: float | None = None, *, end: float | None = None,
                 parent: "Budget | None" = None):
        self.runs = runs
        self.end = end if seconds is None else time.perf_counter() + seconds
        self.parent = parent

    def part(self, keep_runs: int, keep_seconds: float | None = None) -> "Budget":
        """This budget less ``keep_runs`` runs (at most half of it) and ``keep_seconds`` kept for later."""
        runs = None if self.runs is None else self.runs - min(keep_runs, self.runs // 2)
        end = self.end - keep_seconds if self.end is not None and keep_seconds else self.end
        return Budget(runs, end=end, parent=self)

    def share(self, stages_left: int) -> "Budget":
        """An equal share of what is left for the next of ``stages_left`` stages (runs and seconds)."""
        k = max(stages_left, 1)
        runs = None if self.runs is None else max(self.runs, 0) // k
        end = None if self.end is None else time.perf_counter() + (self.end - time.perf_counter()) / k
        return Budget(runs, end=end, parent=self)

    def spend(self, runs: int = 1) -> None:
        if self.runs is not None:
            self.runs -= runs
        if self.parent is not None:
            self.parent.spend(runs)

    @property
    def spent(self) -> bool:
        return (self.runs is not None and self.runs <= 0) or (self.end is not None and time.perf_counter() > self.end)
