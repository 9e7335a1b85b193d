"""`actstore study`: a whole study (ingest -> analyses -> report) from one TOML file, as a library.

    from actstore.workflows.study import load_study, prepare, run_study
    plan, checked = prepare(load_study("demo"))      # validated: StudyError lists every problem
    result = run_study(plan)                          # skips what the store already holds

Modules, one job each: `spec` (read the file, lines of keys, the schema), `validate` (one
sentence per problem), `plan` (the steps), `estimate` (cost), `actions` (each step's library
call), `status` (what the store already holds), `run` (the runner), `describe` (dry run and
status text), `report` (the report step). Shipped studies: `actstore/data/studies/*.toml`.
"""

from __future__ import annotations

from actstore.workflows.study.plan import Plan, build_plan
from actstore.workflows.study.run import StudyResult, run_study
from actstore.workflows.study.spec import Study, StudyError, load_study, shipped_studies
from actstore.workflows.study.validate import Checked, check

__all__ = ["Checked", "Plan", "Study", "StudyError", "StudyResult", "build_plan", "check", "load_study",
           "prepare", "run_study", "shipped_studies"]


def prepare(study: Study, *, weights: bool = True) -> tuple[Plan, Checked]:
    """Validate `study` (raising StudyError with every problem; with `weights`, missing weights of
    required systems are problems) and plan its steps."""
    checked = check(study, weights=weights)
    return build_plan(study, checked), checked
