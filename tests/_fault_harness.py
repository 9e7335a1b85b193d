"""Kill-and-rerun harness for `tests/test_faults.py` and `scripts/fault_campaign.py`.

`Runner` runs `actstore ...` command lines as separate processes, optionally with
ACTSTORE_FAULT set, and returns their exit status (-9: killed by SIGKILL). Starting a Python that
imports torch and transformers costs seconds, and a fault campaign starts dozens of ingests, so
by default the runner keeps ONE server process that has imported them and forks a fresh child
per command line: each child is a real, separate process that runs the CLI's `main` from the
start (opens the store, loads the model, ingests) and dies for real. The server never opens a
store or runs a model, so the children inherit no LanceDB runtime, thread pool or lock.
`fork=False` spawns `python -m actstore.cli` instead (slower, nothing shared; the campaign's
`--spawn`).

`store_state` reads back everything a rerun must get right (activation keys and vectors,
texts, points, finalize state, runs) so two stores can be compared with `compare_states`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

#: modules the fork server imports once, so children start without paying for them
#: (transformers imports model code lazily: BERT is what all-MiniLM-L6-v2 and the tiny BERT use)
_PRELOAD = ("torch", "transformers", "transformers.models.auto.modeling_auto",
            "transformers.models.bert.modeling_bert", "actstore.cli", "actstore.store.api",
            "actstore.ingest.pipeline", "actstore.ingest.adapters", "actstore.ingest.sources")


class Runner:
    """Runs actstore command lines in separate processes (forked from a preloaded server)."""

    def __init__(self, *, fork: bool = True, env: Mapping[str, str] | None = None,
                 log_dir: str | Path | None = None, preload: Sequence[str] = ()):
        self.fork = fork and hasattr(os, "fork")
        self.env = dict(os.environ if env is None else env)
        self.log_dir = Path(log_dir) if log_dir else None
        self.preload = list(preload)  # more modules for the fork server to import first
        self._server: subprocess.Popen | None = None
        self._n = 0

    # ------------------------------------------------------------------ public
    def run(self, argv: Sequence[str], *, fault: str | None = None) -> int:
        """Exit status of `actstore argv` (negative: killed by that signal)."""
        return self.run_together([argv], fault=fault)[0]

    def run_together(self, argvs: Sequence[Sequence[str]], *, fault: str | None = None) -> list[int]:
        """Start every command line at once and wait for all; their exit statuses."""
        env = dict(self.env)
        env.pop("ACTSTORE_FAULT", None)
        if fault:
            env["ACTSTORE_FAULT"] = fault
        jobs = [{"argv": list(a), "env": env, "log": self._log()} for a in argvs]
        if self.fork:
            return self._ask_server(jobs)
        procs = []
        for job in jobs:
            out = open(job["log"], "ab") if job["log"] else subprocess.DEVNULL
            procs.append(subprocess.Popen([sys.executable, "-m", "actstore.cli", *job["argv"]],
                                          env=env, stdout=out, stderr=subprocess.STDOUT))
        return [p.wait() for p in procs]

    def close(self) -> None:
        if self._server is not None:
            try:
                self._server.stdin.close()  # type: ignore[union-attr]
                self._server.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._server.kill()
            self._server = None

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _log(self) -> str | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._n += 1
        return str(self.log_dir / f"run{self._n:03d}.log")

    def _ask_server(self, jobs: list[dict]) -> list[int]:
        if self._server is None:
            self._server = subprocess.Popen(
                [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
                 "from _fault_harness import serve; serve()",
                 *self.preload],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.env, text=True, bufsize=1)
        assert self._server.stdin and self._server.stdout
        self._server.stdin.write(json.dumps(jobs) + "\n")
        self._server.stdin.flush()
        line = self._server.stdout.readline()
        if not line:
            raise RuntimeError("the fault-harness server died; run with fork=False to see why")
        return json.loads(line)


def serve() -> None:
    """Fork server: read a JSON list of jobs per line, fork one child each, answer their statuses."""
    import importlib

    import warnings

    for name in (*_PRELOAD, *sys.argv[1:]):
        importlib.import_module(name)
    # LanceDB warns that fork is experimental when its async runtime may be mid-operation; this
    # server never opens a store, so nothing is, and the child gets a fresh runtime.
    warnings.filterwarnings("ignore", message="lancedb fork support")
    for line in sys.stdin:
        jobs = json.loads(line)
        pids = [_fork_job(job) for job in jobs]
        codes = []
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            codes.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
        sys.stdout.write(json.dumps(codes) + "\n")
        sys.stdout.flush()


def _fork_job(job: dict) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: a fresh actstore process from here on
        os.environ.clear()
        os.environ.update(job["env"])
        fd = os.open(job["log"] or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        from actstore.cli import main

        try:
            main(args=job["argv"], prog_name="actstore", standalone_mode=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001  (report anything, then exit like a process would)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# ---------------------------------------------------------------------- reading a store back
@dataclass
class StoreState:
    """What a rerun must get right, read back from a store."""

    rows: int  # activation rows
    keys: int  # distinct activation keys
    vectors: dict[tuple, np.ndarray]  # key -> vector (the last row read for duplicated keys)
    texts: int  # sentence rows
    text_keys: int  # distinct sentence keys
    sentences: set[tuple]  # (source, split, lang, sentence_id, text)
    points: set[tuple]  # (model, point, width, table_name)
    finalize: list[str]  # reasons finalize is still needed (empty: done)
    runs: dict[str, int]  # status -> count
    langs_with_rows_but_no_texts: list[str]

    @property
    def duplicates(self) -> int:
        return self.rows - self.keys

    @property
    def text_duplicates(self) -> int:
        return self.texts - self.text_keys

    def counts(self) -> dict:
        return {"rows": self.rows, "dup": self.duplicates, "texts": self.texts,
                "text_dup": self.text_duplicates, "points": len(self.points),
                "finalize_needed": len(self.finalize), "running": self.runs.get("running", 0),
                "interrupted": self.runs.get("interrupted", 0)}


def store_state(uri: str | Path) -> StoreState:
    """Read back a store's activation rows, texts, points, finalize state and runs.

    Activation tables are found on disk, not only through `points`, so rows a killed run wrote
    before registering its points count too.
    """

    from actstore.schema import ACTIVATION_KEY, SENTENCES_KEY
    from actstore.store import Store

    store = Store.open(str(uri), create=False)
    rows, vectors = 0, {}
    for name in sorted(n for n in store.table_names() if n.startswith("act_")):
        ds = store.dataset(name)
        tbl = ds.to_table(columns=[*ACTIVATION_KEY, "sentence_id", "vector"])
        rows += tbl.num_rows
        keys = zip(*(tbl.column(c).to_pylist() for c in ACTIVATION_KEY))
        vecs = tbl.column("vector").combine_chunks()
        flat = vecs.values.to_numpy(zero_copy_only=False).reshape(len(vecs), -1) if len(vecs) else []
        for key, vec in zip(keys, flat):
            vectors[key] = np.asarray(vec, dtype=np.float32)
    sent = store.sentences()
    sentences = {tuple(r) for r in sent.select(*SENTENCES_KEY, "text").iter_rows()}
    pts = store.points()
    points = {tuple(r) for r in pts.select("model", "point", "width", "table_name").iter_rows()}
    finalize = [r for m in store.models() for r in store.finalize_needed(m)]
    runs = store.runs()
    statuses = dict(runs.group_by("status").len().iter_rows()) if runs.height else {}
    text_langs = {k[3] for k in vectors if k[2] == "text"}
    have = set(sent["lang"].to_list()) if sent.height else set()
    return StoreState(rows=rows, keys=len(vectors), vectors=vectors, texts=sent.height,
                      text_keys=len({s[:4] for s in sentences}), sentences=sentences, points=points,
                      finalize=finalize, runs=statuses,
                      langs_with_rows_but_no_texts=sorted(text_langs - have))


def compare_states(got: StoreState, want: StoreState, *, atol: float = 1e-5) -> list[str]:
    """Differences between a rerun's store and a clean ingest's (empty: equal); `atol` on vectors."""
    problems = []
    if got.duplicates or got.text_duplicates:
        problems.append(f"duplicates: {got.duplicates} activation keys, {got.text_duplicates} texts")
    if set(got.vectors) != set(want.vectors):
        missing, extra = set(want.vectors) - set(got.vectors), set(got.vectors) - set(want.vectors)
        problems.append(f"activation keys differ: {len(missing)} missing, {len(extra)} extra")
    else:
        worst = max((float(np.abs(got.vectors[k] - want.vectors[k]).max()) for k in want.vectors), default=0.0)
        if not worst <= atol:
            problems.append(f"vectors differ by up to {worst:.3g}")
    if got.sentences != want.sentences:
        problems.append(f"sentences differ: {len(want.sentences - got.sentences)} missing, "
                        f"{len(got.sentences - want.sentences)} extra")
    if got.points != want.points:
        problems.append(f"points differ: {sorted(want.points ^ got.points)}")
    if got.finalize:
        problems.append(f"finalize still needed: {got.finalize}")
    if got.runs.get("running"):
        problems.append(f"{got.runs['running']} run(s) left running")
    return problems


def max_vector_difference(got: StoreState, want: StoreState) -> float:
    """Largest absolute difference between the vectors of keys both stores hold."""
    common = set(got.vectors) & set(want.vectors)
    return max((float(np.abs(got.vectors[k] - want.vectors[k]).max()) for k in common), default=0.0)
