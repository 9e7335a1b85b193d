#!/usr/bin/env bash
# The main job on the embedded default: ingest -> analyses -> report, offline.
# Called by `make demo` (DB, OUT, LIMIT, BIN come from the Makefile).
set -euo pipefail
DB=${DB:-actstore.lance}
OUT=${OUT:-demo-out}
LIMIT=${LIMIT:-200}
SPEECH_LIMIT=${SPEECH_LIMIT:-50}
# the study's other two systems, tiny and random-init: a handful of languages (high: eng fra deu,
# medium: hin rus, low: bul mar) x COMPARE_LIMIT sentences, speech and text
COMPARE_LANGS=${COMPARE_LANGS:-eng,fra,deu,hin,rus,bul,mar}
COMPARE_LIMIT=${COMPARE_LIMIT:-30}
BIN=${BIN:-.venv/bin}
A="$BIN/actstore"
TINY="$OUT/tiny-random-seamless-m4t-v2"
SEAMLESS=tiny-random-seamless-m4t-v2
SONAR=tiny-random-sonar
SALMONN=tiny-random-salmonn
MINILM=all-MiniLM-L6-v2
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
step() { printf '\n== %s\n' "$*"; }
start=$(date +%s)

step "1/7 build tiny RANDOM-INIT SeamlessM4T v2, SONAR and SALMONN (real weights cannot be downloaded here)"
[ -f "$TINY/config.json" ] || "$A" make-tiny-model --kind seamless-m4t-v2 --out "$TINY"
[ -f "$OUT/$SONAR/asset_card.yaml" ] || "$A" make-tiny-model --kind sonar --out "$OUT/$SONAR"
[ -f "$OUT/$SALMONN/decode_config.yaml" ] || "$A" make-tiny-model --kind salmonn --out "$OUT/$SALMONN"

step "2/7 ingest FLORES-200 devtest text through all-MiniLM-L6-v2 (real weights), $LIMIT sentences x 36 languages"
"$A" ingest --db "$DB" --model "$MINILM" --modalities text --limit "$LIMIT" --batch-size 32

step "3/7 ingest the same text, and espeak-ng speech of the first $SPEECH_LIMIT sentences, through the tiny random-init SeamlessM4T v2"
"$A" ingest --db "$DB" --model "$TINY" --modalities text --limit "$LIMIT" --batch-size 32
# Japanese is left out of speech: espeak-ng's ja voice reads only kana, so FLORES Japanese (kanji)
# comes out as ~30 s of "Chinese letter ..." per sentence -- garbage input that would also cost
# more than all other languages together (attention is quadratic in length).
SPEECH_LANGS=$("$A" languages --format csv | awk -F, 'NR > 1 && $1 != "jpn" {print $1}' | paste -sd, -)
"$A" ingest --db "$DB" --model "$TINY" --modalities speech --langs "$SPEECH_LANGS" --limit "$SPEECH_LIMIT" --batch-size 8

step "4/7 ingest speech and text of $COMPARE_LIMIT sentences x $COMPARE_LANGS through the tiny random-init SONAR and SALMONN"
# SONAR: one speech encoder per language (the tiny one has eng and fra; the others are reported and
# skipped, text is stored for all). SALMONN: each sentence's audio and text in one prompt (paired).
"$A" ingest --db "$DB" --model "$OUT/$SONAR" --langs "$COMPARE_LANGS" --limit "$COMPARE_LIMIT" --batch-size 16
"$A" ingest --db "$DB" --model "$OUT/$SALMONN" --langs "$COMPARE_LANGS" --limit "$COMPARE_LIMIT" --batch-size 8

step "5/7 what is stored"
"$A" info --db "$DB"
"$A" query --db "$DB" "SELECT model, modality, COUNT(DISTINCT lang) AS langs, COUNT(DISTINCT point) AS points, COUNT(*) AS rows FROM activations GROUP BY model, modality ORDER BY model, modality"

step "6/7 analyses: SVCCA grids, retrieval, t-SNE, neurons"
"$A" analyze similarity --db "$DB" --model "$SEAMLESS" --kind all --quiet
"$A" analyze similarity --db "$DB" --model "$MINILM" --kind cross-lingual --quiet
for M in "$SEAMLESS" "$MINILM"; do
  "$A" analyze retrieval --db "$DB" --model "$M" --quiet --format csv -o "$OUT/retrieval-$M.csv"
  "$A" analyze neurons --db "$DB" --model "$M" --quiet
done
"$A" analyze tsne --db "$DB" --model "$SEAMLESS" --points embed,L4 --per-language 40 --quiet
"$A" analyze tsne --db "$DB" --model "$MINILM" --points embed,L6 --per-language 40 --quiet

step "7/7 reports (the comparison computes what SONAR and SALMONN still miss)"
"$A" report --db "$DB" --model "$MINILM" --out "$OUT/report-$MINILM.html"
"$A" report --db "$DB" --model "$SEAMLESS" --out "$OUT/report-$SEAMLESS.html"
"$A" report --db "$DB" --model "$SEAMLESS" --model "$SONAR" --model "$SALMONN" --out "$OUT/report-study-systems.html"
echo
echo "done in $(( $(date +%s) - start )) s. Reports:"
echo "  $(cd "$OUT" && pwd)/report-study-systems.html  (SeamlessM4T v2, SONAR, SALMONN side by side)"
echo "  $(cd "$OUT" && pwd)/report-$MINILM.html"
echo "  $(cd "$OUT" && pwd)/report-$SEAMLESS.html"
