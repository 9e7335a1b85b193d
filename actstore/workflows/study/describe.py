"""What `--dry-run` and `--status` print: the plan with its cost, and what is done or left.

Kept apart from running so a dry run imports nothing that loads a model unless the weights are
here (then only to read their shapes for the estimate).
"""

from __future__ import annotations

from actstore.workflows.study.estimate import estimate, size
from actstore.workflows.study.plan import Plan
from actstore.workflows.study.validate import Checked


def plan_lines(plan: Plan, checked: Checked) -> list[str]:
    """The full plan: systems with languages and cost, steps in order, missing weights."""
    study = plan.study
    title = study.table("study").get("title", "")
    lines = [f"study {study.name}{': ' + title if title else ''}", f"store: {plan.db}",
             f"folder for built models and the report: {study.out}", "", "systems:"]
    costs = {c.system: c for c in estimate(plan)}
    total_items = total_forwards = total_disk = peak = 0
    for name, sp in plan.systems.items():
        c = costs[name]
        kind = "RANDOM-INIT (tiny)" if sp.random_init else "real weights"
        lines.append(f"  {name} [{kind}]: {sp.spec.get('model') or sp.spec.get('build') or sp.spec.get('convert')}; "
                     f"{len(sp.langs)} languages ({','.join(sp.langs)}), {'+'.join(sp.modalities)}, "
                     f"{'limit ' + str(sp.limit) if sp.limit else 'every sentence'}")
        lines.append(f"    cost: {c.items} items, {c.forwards} forwards, {c.points} points, peak activation memory "
                     f"~{size(c.peak_bytes)} per forward, vectors ~{size(c.disk_bytes)} on disk"
                     + (f" [{c.note}]" if c.note else ""))
        total_items, total_forwards, total_disk = total_items + c.items, total_forwards + c.forwards, total_disk + c.disk_bytes
        peak = max(peak, c.peak_bytes)
    lines.append(f"  total: {total_items} items, {total_forwards} forwards, peak ~{size(peak)} per forward, "
                 f"~{size(total_disk)} of vectors")
    for name, why in plan.skipped.items():
        lines.append(f"  {name}: left out (optional, weights missing): {why}")
    lines += ["", "steps:"]
    lines += [f"  {i:3}. {step.label}" for i, step in enumerate(plan.steps, start=1)]
    missing = {n: w for n, w in checked.missing.items() if n in plan.systems}
    lines.append("")
    if missing:
        lines.append("missing weights (the run needs them):")
        lines += [f"  {name}: {why}" for name, why in missing.items()]
    else:
        lines.append("weights: every system's weights are here (or built/converted by its step).")
    lines.append("nothing was run (dry run).")
    return lines


def status_lines(plan: Plan) -> list[str]:
    """Per step: done (stored), left, or always run; then the count left."""
    from actstore.workflows.study.actions import Context
    from actstore.workflows.study.status import step_done, stored_items

    store = Context(plan.db, plan.storage_options, models={}).store()
    lines, left = [f"study {plan.study.name}, store {plan.db}{'' if store else ' (not created yet)'}:"], 0
    for step in plan.steps:
        done = step_done(store, step)
        mark = {True: "done", False: "left", None: "runs"}[done]
        left += done is False
        got = f" ({stored_items(store, step)} of ~{step.units} items stored)" if step.kind == "ingest" and not done else ""
        lines.append(f"  {mark:5} {step.label}{got}")
    lines.append(f"{left} of {len(plan.steps)} steps left" + (" (conversions and the report run every time; "
                 "both are quick when their inputs are stored)." if plan.steps else "."))
    return lines
