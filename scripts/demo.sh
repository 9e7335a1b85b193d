#!/usr/bin/env bash
# The main job on the embedded default: ingest -> analyses -> report, offline.
# Called by `make demo` (DB, OUT, LIMIT, BIN come from the Makefile).
set -euo pipefail
DB=${DB:-actstore.lance}
OUT=${OUT:-demo-out}
LIMIT=${LIMIT:-200}
SPEECH_LIMIT=${SPEECH_LIMIT:-50}
BIN=${BIN:-.venv/bin}
A="$BIN/actstore"
TINY="$OUT/tiny-random-seamless-m4t-v2"
SEAMLESS=tiny-random-seamless-m4t-v2
MINILM=all-MiniLM-L6-v2
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
step() { printf '\n== %s\n' "$*"; }
start=$(date +%s)

step "1/6 build a tiny RANDOM-INIT SeamlessM4T v2 (real weights cannot be downloaded here)"
[ -f "$TINY/config.json" ] || "$A" make-tiny-model --kind seamless-m4t-v2 --out "$TINY"

step "2/6 ingest FLORES-200 devtest text through all-MiniLM-L6-v2 (real weights), $LIMIT sentences x 36 languages"
"$A" ingest --db "$DB" --model "$MINILM" --modalities text --limit "$LIMIT" --batch-size 32

step "3/6 ingest the same text, and espeak-ng speech of the first $SPEECH_LIMIT sentences, through the tiny random-init SeamlessM4T v2"
"$A" ingest --db "$DB" --model "$TINY" --modalities text --limit "$LIMIT" --batch-size 32
# Japanese is left out of speech: espeak-ng's ja voice reads only kana, so FLORES Japanese (kanji)
# comes out as ~30 s of "Chinese letter ..." per sentence -- garbage input that would also cost
# more than all other languages together (attention is quadratic in length).
SPEECH_LANGS=$("$A" languages --format csv | awk -F, 'NR > 1 && $1 != "jpn" {print $1}' | paste -sd, -)
"$A" ingest --db "$DB" --model "$TINY" --modalities speech --langs "$SPEECH_LANGS" --limit "$SPEECH_LIMIT" --batch-size 8

step "4/6 what is stored"
"$A" info --db "$DB"
"$A" query --db "$DB" "SELECT model, modality, COUNT(DISTINCT lang) AS langs, COUNT(DISTINCT point) AS points, COUNT(*) AS rows FROM activations GROUP BY model, modality ORDER BY model, modality"

step "5/6 analyses: SVCCA grids, retrieval, t-SNE, neurons"
"$A" analyze svcca --db "$DB" --model "$SEAMLESS" --kind all --quiet
"$A" analyze svcca --db "$DB" --model "$MINILM" --kind cross-lingual --quiet
for M in "$SEAMLESS" "$MINILM"; do
  "$A" analyze retrieval --db "$DB" --model "$M" --quiet --format csv -o "$OUT/retrieval-$M.csv"
  "$A" analyze neurons --db "$DB" --model "$M" --quiet
done
"$A" analyze tsne --db "$DB" --model "$SEAMLESS" --points embed,L4 --per-language 40 --quiet
"$A" analyze tsne --db "$DB" --model "$MINILM" --points embed,L6 --per-language 40 --quiet

step "6/6 reports"
"$A" report --db "$DB" --model "$MINILM" --out "$OUT/report-$MINILM.html"
"$A" report --db "$DB" --model "$SEAMLESS" --out "$OUT/report-$SEAMLESS.html"
echo
echo "done in $(( $(date +%s) - start )) s. Reports:"
echo "  $(cd "$OUT" && pwd)/report-$MINILM.html"
echo "  $(cd "$OUT" && pwd)/report-$SEAMLESS.html"
