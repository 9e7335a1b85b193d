"""The parts of an intervention that need no model: the displacement-matched control, the
bootstrap interval over sentences, and py3langid's mapping onto the catalogue (on real FLORES
sentences of several languages and scripts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actstore.errors import ActstoreError
from actstore.ingest import intervention_effects as fx
from actstore.ingest import language_id
from actstore.ingest.interventions import MATCH_POOL, displacements, matched_units, unit_values

REPO = Path(__file__).resolve().parents[1]


def test_displacement_is_the_mean_distance_of_the_stored_rows_from_the_clamp_value():
    rows = np.array([[0.0, 1.0, 5.0], [2.0, 1.0, -5.0], [4.0, 1.0, 0.0]], np.float32)
    med = unit_values(rows, "median")
    np.testing.assert_allclose(med, [2.0, 1.0, 0.0])
    np.testing.assert_allclose(displacements(rows, med), [4 / 3, 0.0, 10 / 3])
    np.testing.assert_allclose(displacements(rows, unit_values(rows, "zero")), [2.0, 1.0, 10 / 3])


def test_matched_units_sit_at_the_chosen_units_displacement():
    disp = np.arange(100, dtype=float)  # unit u is displaced by u
    chosen = (90, 95, 99, 10)
    seen = set()
    for seed in range(5):
        got = matched_units(disp, chosen, seed, "s")
        assert len(got) == 4 and len(set(got)) == 4 and not set(got) & set(chosen)
        # each chosen unit is matched among the MATCH_POOL free units nearest to it
        assert sorted(got)[0] in range(10 - MATCH_POOL, 10 + MATCH_POOL + 1)
        assert all(u >= 90 - 2 * MATCH_POOL for u in sorted(got)[1:])
        assert got == matched_units(disp, chosen, seed, "s")  # seeded
        seen.add(got)
    assert len(seen) > 1  # seeds give different sets
    gap = abs(disp[list(got)].mean() - disp[list(chosen)].mean())
    assert gap <= MATCH_POOL + 1
    with pytest.raises(ActstoreError, match="matched control of 3 units needs as many other units"):
        matched_units(np.arange(5.0), (0, 1, 2), 0, "s")


def test_the_interval_is_the_percentile_bootstrap_of_the_ratio_of_sums():
    rng = np.random.default_rng(3)
    before, after = rng.normal(-60, 5, 12), rng.normal(-66, 5, 12)
    tokens = rng.integers(10, 30, 12).astype(float)
    idx = fx.draws(12, 500)
    lo, hi = fx.interval(before, after, tokens, idx)
    by_hand = [(after[d].sum() - before[d].sum()) / tokens[d].sum() for d in idx]
    np.testing.assert_allclose([lo, hi], np.quantile(by_hand, [0.025, 0.975]), rtol=1e-12)
    assert lo < (after.sum() - before.sum()) / tokens.sum() < hi
    assert np.array_equal(idx, fx.draws(12, 500))  # the same draws for every set of a row
    assert fx.interval(before, after, tokens, fx.draws(12, 0)) == (None, None)


def _flores() -> Path:
    for base in REPO.parents:
        if (base / "shared" / "data" / "flores200" / "devtest").is_dir():
            return base / "shared" / "data" / "flores200" / "devtest"
    pytest.skip("../shared/data/flores200 is not beside the checkout")


@pytest.mark.parametrize("lang", ["eng", "fra", "deu", "rus", "cmn", "jpn", "kor", "hin", "arb", "swh", "tha",
                                  "pes", "ell", "amh", "tur", "yue"])
def test_py3langid_identifies_flores_sentences_as_their_catalogue_language(lang):
    root = _flores()
    files = dict(line.split("\t") for line in (root.parent / "lang_map.tsv").read_text().splitlines() if line)
    lines = (root / f"{files[lang].strip()}.devtest").read_text(encoding="utf-8").splitlines()[:40]
    said = language_id.identify(lines)
    assert np.mean([c == language_id.langid_code(lang) for c in said]) >= 0.85, (lang, said)
    if lang != "yue":  # Cantonese is identified as zh, which maps back to Mandarin (cmn)
        assert np.mean([language_id.as_catalogue(c) == lang for c in said]) >= 0.85


def test_a_language_py3langid_cannot_identify_is_refused_and_empty_output_is_nothing():
    with pytest.raises(ActstoreError, match="py3langid cannot identify 'snd'"):
        language_id.langid_code("snd")
    assert language_id.identify(["", "  "]) == [None, None]
    assert language_id.as_catalogue("zh") == "cmn" and language_id.as_catalogue("xh") == "xh"


def test_wide_sites_reduce_in_chunks_with_the_same_answer(monkeypatch):
    import actstore.ingest.interventions as iv

    rows = np.random.default_rng(0).standard_normal((31, 50)).astype(np.float32)
    whole = [unit_values(rows, k) for k in ("median", "mean")]
    monkeypatch.setattr(iv, "CHUNK", 7)
    for kind, want in zip(("median", "mean"), whole):
        got = unit_values(rows, kind)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(displacements(rows, got), np.abs(rows.astype(float) - got.astype(float)).mean(0),
                                   rtol=1e-12)
