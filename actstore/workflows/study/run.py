"""Run a planned study: every step in order, skipping what the store already holds, one progress
display over steps and items, and a summary of what each step did.

Why this shape: a study runs for hours and may be killed at any moment; each step is idempotent
(ingest resumes, results are keyed upserts), so "run again" is the whole recovery story, and the
runner only has to ask the store what is done (`status.step_done`) and go on from there.

`ACTSTORE_STUDY_FAULT=kind[:k]` kills the process (as ACTSTORE_FAULT does inside an ingest, with
the same `die`) right after the k-th step of that kind finished, before the next one starts:
with the ingest phases it lets the tests kill a study between any two of its commits.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from actstore.errors import ActstoreError
from actstore.workflows.study.actions import ACTIONS, Context
from actstore.workflows.study.plan import Plan, Step
from actstore.workflows.study.status import step_done

FAULT_ENV = "ACTSTORE_STUDY_FAULT"


@dataclass
class StepResult:
    step: Step
    status: str  # ran | stored (already done) | failed | skipped
    seconds: float = 0.0
    message: str = ""


@dataclass
class StudyResult:
    plan: Plan
    steps: list[StepResult] = field(default_factory=list)

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.steps if r.status == "failed"]

    def summary_lines(self) -> list[str]:
        lines = [f"{r.status:7} {r.seconds:7.1f} s  {r.step.label}{': ' + r.message if r.message else ''}"
                 for r in self.steps]
        counts = {s: sum(r.status == s for r in self.steps) for s in ("ran", "stored", "skipped", "failed")}
        lines.append(f"study {self.plan.study.name}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
                     + f" of {len(self.steps)} steps.")
        return lines


def _fault() -> Callable[[str], None]:
    """The hook that dies after the k-th finished step of a kind (ACTSTORE_STUDY_FAULT), or a no-op."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return lambda kind: None
    from actstore.ingest.faults import die

    kind, _, k = spec.partition(":")
    if kind not in ACTIONS or (k and not k.isdigit()):
        raise ActstoreError(f"{FAULT_ENV}={spec!r} names no study step; use one of {', '.join(ACTIONS)} "
                            "with an optional :k (the k-th such step, from 1).")
    seen = [0]

    def hook(name: str) -> None:
        if name == kind:
            seen[0] += 1
            if seen[0] == int(k or 1):
                die(f"study {kind}", seen[0])

    return hook


class _Display:
    """One tqdm bar over every step's units (items for ingests, one per other step)."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="item", disable=not enabled, desc="study")

    def step(self, step: Step) -> None:
        self.bar.set_description_str(step.label[:60])

    def update(self, n: int) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()


def run_study(plan: Plan, *, progress: bool = True, say: Callable[[str], None] | None = None) -> StudyResult:
    """Run every step of `plan` not yet stored; a failing step is reported and the steps that need
    its output are skipped, the others go on (the summary names what failed)."""
    say = say or (lambda text: None)
    for name, why in plan.skipped.items():
        say(f"note: {name} is left out: {why}")
    display = _Display(sum(s.units for s in plan.steps), progress)
    ctx = Context(plan.db, plan.storage_options, models={}, on_items=display.update, say=say)
    fault, result, broken = _fault(), StudyResult(plan), set()
    try:
        for step in plan.steps:
            result.steps.append(_one(ctx, step, display, broken))
            fault(step.kind)
    finally:
        display.close()
    return result


def _one(ctx: Context, step: Step, display: _Display, broken: set) -> StepResult:
    display.step(step)
    if step.system in broken and step.kind not in ("build", "convert"):
        display.update(step.units)
        return StepResult(step, "skipped", message=f"{step.system}'s earlier step failed")
    needs = set(step.args["models"]) if step.kind == "report" else {step.args["a"], step.args["b"]} \
        if step.kind == "cross-model" else set()
    if broken & needs:
        display.update(step.units)
        return StepResult(step, "skipped", message=f"{', '.join(sorted(broken))} failed earlier")
    start = time.perf_counter()
    if step.kind == "build" and step_done(None, step):  # already built: only its path is needed
        ACTIONS[step.kind](ctx, step)
        display.update(step.units)
        return StepResult(step, "stored", time.perf_counter() - start)
    if step.kind not in ("build", "convert") and step_done(ctx.store(), step):
        display.update(step.units)
        return StepResult(step, "stored", time.perf_counter() - start)
    try:
        before = display.bar.n
        message = ACTIONS[step.kind](ctx, step)
        display.update(max(0, step.units - (display.bar.n - before)))
        status = "ran"
    except ActstoreError as exc:
        if step.kind in ("build", "convert", "ingest"):
            broken.add(step.system)
        display.update(step.units)
        message, status = str(exc), "failed"
    return StepResult(step, status, time.perf_counter() - start, message)
