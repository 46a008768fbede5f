#!/usr/bin/env bash
# Side-by-side privacy measurements (docs/PRIVACY.md "Measured"): for each node preset, the active
# attack (phantom), then per data set a normal federated run logged by a curious server (passive
# attack; its generator feeds the membership attack and the downstream Dice of asyndgan eval).
# Reduced scale (2 shared CPU cores): 32x32, ngf/ndf 8, 3 blocks, 200 rounds, batch 4, 3 nodes, seed 1.
# Usage: tools/audit-measure.sh OUT_RUNS DOCS_RESULTS [presets] [datasets]
set -u
RUNS=${1:-runs/privacy}
DOCS=${2:-docs/results/privacy-$(date -u +%F)}
PRESETS=${3:-"off guarded dp"}
DATASETS=${4:-"phantom mricron"}
ROUNDS=${ROUNDS:-200}
ACTIVE_ROUNDS=${ACTIVE_ROUNDS:-36}
A="node bin/asyndgan.js"
MODEL="--size 32 --ngf 8 --ndf 8 --blocks 3"
mkdir -p "$RUNS" "$DOCS"
log() { echo "$*" | tee -a "$DOCS/summary.txt"; }
for p in $PRESETS; do
  o="$RUNS/active-$p"
  log "## active $p: $A audit active --data phantom --size 32 --ndf 8 --batch-size 16 --rounds $ACTIVE_ROUNDS --node-flags=\"--privacy $p\" --out $o"
  $A audit active --data phantom --size 32 --ndf 8 --batch-size 16 --rounds "$ACTIVE_ROUNDS" --node-flags="--privacy $p" --out "$o" 2>"$o.err" | tee -a "$DOCS/summary.txt"
  mkdir -p "$DOCS/active-$p" && cp "$o"/audit-active.* "$DOCS/active-$p/" 2>/dev/null
done
for d in $DATASETS; do
  for p in $PRESETS; do
    o="$RUNS/$d-$p"
    log "## passive $d $p: $A audit passive --data $d $MODEL --rounds $ROUNDS --node-flags=\"--privacy $p\" --out $o"
    $A audit passive --data "$d" $MODEL --rounds "$ROUNDS" --node-flags="--privacy $p" --out "$o" 2>"$o.err" | tee -a "$DOCS/summary.txt"
    log "## membership $d $p: $A audit membership --generator $o/generator.safetensors --data $d --out $o"
    $A audit membership --generator "$o/generator.safetensors" --data "$d" --out "$o" 2>>"$o.err" | tee -a "$DOCS/summary.txt"
    log "## eval $d $p: $A eval --generator $o/generator.safetensors --data $d --settings synthetic --out $o/eval"
    $A eval --generator "$o/generator.safetensors" --data "$d" --settings synthetic --out "$o/eval" 2>>"$o.err" | tee -a "$DOCS/summary.txt"
    grep -h "mean foreground Dice" "$o.err" | tail -1 | tee -a "$DOCS/summary.txt"
    mkdir -p "$DOCS/$d-$p" && cp "$o"/audit-*.json "$o"/audit-*.png "$DOCS/$d-$p/" 2>/dev/null; cp "$o"/eval/eval.json "$o"/eval/eval.md "$DOCS/$d-$p/" 2>/dev/null
  done
done
log "## done $(date -u)"
