"""Parsing the ingest command's text arguments into values, with one clear sentence per mistake.

Kept apart from the pipeline so that every argument is checked before a store is touched or a
model is loaded: `--layers=-1`, `--layers 3-x`, `--layers 6-1` and `--langs ""` are refused here
with the reason and the fix, never with a traceback or a silent "all". It also names the engines
(`ENGINES`) that `--engine` offers and `steps.inputs.check_request` accepts: this module imports
nothing heavy, so the CLI reads them without loading the pipeline.
"""

from __future__ import annotations

from typing import Literal

from actstore.errors import ActstoreError

#: ingest engines (`--engine`): who runs the model (`actstore.ingest.engines`; planning and
#: writing are shared)
ENGINES = ("local", "ray")

_LAYERS_HELP = "use e.g. --layers 1,2,4-8 or --layers study"


def _layer(text: str, spec: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ActstoreError(f"Layer {text!r} in --layers {spec!r} is not an integer; {_LAYERS_HELP}.") from None
    if value < 0:
        raise ActstoreError(f"Layer {value} in --layers {spec!r} is negative; layers count from 0 (the "
                            f"embeddings) or 1, so {_LAYERS_HELP}.")
    return value


def parse_layers(spec: str | None) -> list[int] | Literal["study"] | None:
    """'1,2,4-8' -> [1, 2, 4, 5, 6, 7, 8]; 'study' -> "study"; None -> None (all).

    "study" is resolved when the points are chosen (`steps.planning.study_layers`), from the
    adapter's own `study_layers` (SALMONN's 32 layers differ from SeamlessM4T's and SONAR's 24).

    Refused: negative layers, non-integers, descending ranges ('6-1'), an empty list ('' or ',').
    Duplicates are dropped, keeping first-seen order.
    """
    if spec is None:
        return None
    text = spec.strip()
    if text.lower() == "study":
        return "study"
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise ActstoreError(f"--layers {spec!r} names no layer; {_LAYERS_HELP}, or omit it for every layer.")
    out: list[int] = []
    for part in parts:
        if not part:
            continue
        if part.startswith("-"):
            _layer(part, spec)  # "-1": a negative layer, not a range
        if "-" in part:
            a, b = (s.strip() for s in part.split("-", 1))
            lo, hi = _layer(a, spec), _layer(b, spec)
            if lo > hi:
                raise ActstoreError(f"Layer range {part!r} runs backwards; write the lower layer first, "
                                    f"e.g. --layers {hi}-{lo}.")
            values = range(lo, hi + 1)
        else:
            values = [_layer(part, spec)]
        out.extend(v for v in values if v not in out)
    return out


def parse_langs(spec: str | None) -> list[str] | str:
    """'eng,fra' -> ['eng', 'fra']; 'all' (any case) or None -> 'all'; '' or ',' -> an error.

    An empty --langs used to mean every language (36, with wrong "already stored" counts): a
    typo or an unset shell variable must not start the largest possible ingest.
    """
    if spec is None or spec.strip().lower() == "all":
        return "all"
    codes = [c.strip() for c in spec.split(",") if c.strip()]
    if not codes:
        raise ActstoreError(f"--langs {spec!r} names no language; pass codes such as --langs eng,fra, "
                            "or --langs all for every language.")
    return codes


def parse_names(spec: str | None, option: str) -> list[str] | None:
    """'a, b' -> ['a', 'b']; None -> None; '' or ',' -> an error naming `option`."""
    if spec is None:
        return None
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ActstoreError(f"{option} {spec!r} names nothing; pass a comma-separated list or omit {option}.")
    return names


def parse_options(pairs: tuple[str, ...] | list[str] | None, option: str) -> dict[str, str]:
    """('mode=separate', 'text_pooling=sentence_tokens') -> {'mode': 'separate', ...}.

    Values stay strings: each adapter validates its own options (and refuses unknown keys), so a
    typo is one sentence from the adapter rather than a silent default.
    """
    out: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ActstoreError(f"{option} {pair!r} is not KEY=VALUE; write e.g. {option} mode=separate.")
        out[key.strip()] = value.strip()
    return out
