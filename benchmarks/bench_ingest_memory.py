"""Peak RSS of `actstore ingest` on long clips, with and without the memory budget (issue 10, item 3).

Each case runs `actstore ingest` (tiny random SeamlessM4T v2, a manifest of noise clips written
here) in a fresh child process and reports the child's peak RSS (`getrusage(RUSAGE_CHILDREN)`
read by a fresh wrapper process, so every number is one ingest's own peak) and its estimate.

`--old PYTHON` also runs the unbudgeted code (e.g. the main branch's venv python, whose actstore
has no --max-seconds/--memory-budget) on the same inputs: the "before" numbers.

Measured here (2 shared cores, 24 GiB, tiny SeamlessM4T v2: width 32, one head; an ingest's RSS
before any forward is ~650-700 MiB: torch, LanceDB, Polars, the model, the decoded audio):

    3 x 50 s, --batch-size 3   before (main, unbudgeted)            peak 1843 MiB
                               after, --memory-budget 64GiB         peak 1842 MiB  (one batch, same)
                               after, --memory-budget 1200MiB       peak 1684 MiB  (batches of 1)
    8 x 20 s, --batch-size 8   before (main, unbudgeted)            peak 1014 MiB
                               after, --memory-budget 256MiB        peak  940 MiB  (batches of 2)
    1 x 120 s                  before (issue 10)                    5.9 GB (not re-run here)
                               after, defaults                      refused, peak 682 MiB, exit 1

Run: `python benchmarks/bench_ingest_memory.py [--old /work/main/.venv/bin/python] [--clips 4]
[--seconds 50]`. Prints; asserts nothing. Keeps to about 2 GB: never runs the old code on 120 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import add_run_options, machine, write_summary  # noqa: E402

WRAP = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
        "repr((r.stdout + r.stderr).strip().splitlines()[-1:]))")


def manifest(root: Path, seconds: list[float]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = ["sentence_id,lang,modality,text,audio"]
    for i, s in enumerate(seconds, start=1):
        rng = np.random.default_rng(i)
        sf.write(root / f"c{i}.wav", (0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32),
                 16000, subtype="PCM_16")
        rows.append(f"{i},eng,speech,,c{i}.wav")
    path = root / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def peak(python: str, model: Path, data: Path, db: Path, *extra: str) -> tuple[int, float, str]:
    """(exit code, peak RSS in MiB, last output line) of one ingest in a fresh process."""
    cmd = [python, "-c", "from actstore.cli import main; main()", "ingest", "--db", str(db),
           "--model", str(model), "--source", "manifest", "--data-dir", str(data), "--langs", "eng",
           "--modalities", "speech", "--quiet", *extra]
    # cwd outside any checkout: `python -c` puts the cwd first on sys.path, and a repository root
    # there would shadow the interpreter's own installed actstore
    out = subprocess.run([sys.executable, "-c", WRAP, *cmd], capture_output=True, text=True, check=True,
                         cwd=db.parent)
    rc, kb, last = out.stdout.strip().split(" ", 2)
    return int(rc), int(kb) / 1024, last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default=None, help="python of an install without the budget (the 'before')")
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=50.0)
    ap.add_argument("--budget", default="1200MiB")
    ap.add_argument("--quick", action="store_true", help="2 clips of 20 s, no 120 s case")
    add_run_options(ap)
    args = ap.parse_args()
    if args.quick:
        args.clips, args.seconds = 2, 20.0
    print(f"machine: {machine()}")

    from actstore.ingest.adapters import load_adapter
    from actstore.ingest.items import Item
    from actstore.ingest.memory import BatchCost, format_bytes
    from actstore.ingest.adapters.seamless_m4t_v2.tiny import build_tiny_seamless_m4t_v2

    work = Path(tempfile.mkdtemp(prefix="actstore-mem-bench-"))
    corpus = ["Hello world.", "A short sentence for the tokenizer.", "Bonjour le monde."] * 5
    model = build_tiny_seamless_m4t_v2(work / "tiny", corpus_texts=corpus, vocab_size=200)
    cost = BatchCost(load_adapter(str(model)))
    n, s = args.clips, args.seconds
    clip = lambda k: [Item(i, "eng", "speech", f"s{i}", "x", audio=np.zeros(int(s * 16000), np.float32))  # noqa: E731
                      for i in range(k)]
    data = manifest(work / "long", [s] * n)
    print(f"{n} clips of {s:g} s, tiny SeamlessM4T v2 (estimate one batch of {n}: "
          f"{format_bytes(cost({'speech': clip(n)}))}, one clip: {format_bytes(cost({'speech': clip(1)}))})")
    cases = []
    if args.old:
        cases.append((f"before: unbudgeted, --batch-size {n}", args.old, ("--batch-size", str(n))))
    cases += [
        (f"after: --batch-size {n} --max-seconds 60 --memory-budget 64GiB (one batch, as before)", sys.executable,
         ("--batch-size", str(n), "--max-seconds", "60", "--memory-budget", "64GiB")),
        (f"after: --batch-size {n} --max-seconds 60 --memory-budget {args.budget}", sys.executable,
         ("--batch-size", str(n), "--max-seconds", "60", "--memory-budget", args.budget)),
        (f"after: --batch-size {n} (defaults: 60 s, half of available memory)", sys.executable,
         ("--batch-size", str(n))),
    ]
    peaks = []
    for i, (label, python, extra) in enumerate(cases):
        rc, mib, last = peak(python, model, data, work / f"db{i}", *extra)
        peaks.append(mib)
        print(f"  {label}: exit {rc}, peak RSS {mib:.0f} MiB  {last}")
    write_summary(args.summary, __file__, f"tiny SeamlessM4T v2, {n} clips of {s:g} s, one ingest per setting",
                  f"peak RSS one unbudgeted batch {peaks[-3]:.0f} MiB vs --memory-budget {args.budget} "
                  f"{peaks[-2]:.0f} MiB")
    if args.quick:
        return
    long = manifest(work / "120", [120.0])
    print(f"one 120 s clip (estimate {format_bytes(cost({'speech': [Item(0, 'eng', 'speech', 'x', 'x', audio=np.zeros(120 * 16000, np.float32))]}))}):")
    rc, mib, last = peak(sys.executable, model, long, work / "db120")
    print(f"  after, defaults: exit {rc}, peak RSS {mib:.0f} MiB  {last}")


if __name__ == "__main__":
    main()
