#!/usr/bin/env bash
# The privacy/utility frontier on phantom: the same measurements as tools/audit-measure.sh for
# node settings between the presets. One "label|node flags" per line on stdin.
# Usage: tools/audit-frontier.sh RUNS DOCS < variants.txt
set -u
RUNS=${1:-runs/privacy}
DOCS=${2:-docs/results/privacy-$(date -u +%F)}
ROUNDS=${ROUNDS:-200}
A="node bin/asyndgan.js"
MODEL="--size 32 --ngf 8 --ndf 8 --blocks 3"
mkdir -p "$RUNS" "$DOCS"
log() { echo "$*" | tee -a "$DOCS/frontier.txt"; }
while IFS='|' read -r label flags; do
  [ -z "$label" ] && continue
  o="$RUNS/active-$label"
  log "## active $label: $A audit active --data phantom --size 32 --ndf 8 --batch-size 16 --rounds 36 --node-flags=\"$flags\" --out $o"
  $A audit active --data phantom --size 32 --ndf 8 --batch-size 16 --rounds 36 --node-flags="$flags" --out "$o" 2>"$o.err" </dev/null | tee -a "$DOCS/frontier.txt"
  mkdir -p "$DOCS/active-$label" && cp "$o"/audit-active.* "$DOCS/active-$label/" 2>/dev/null
  o="$RUNS/phantom-$label"
  log "## passive $label: $A audit passive --data phantom $MODEL --rounds $ROUNDS --node-flags=\"$flags\" --out $o"
  $A audit passive --data phantom $MODEL --rounds "$ROUNDS" --node-flags="$flags" --out "$o" 2>"$o.err" </dev/null | tee -a "$DOCS/frontier.txt"
  log "## membership $label"
  $A audit membership --generator "$o/generator.safetensors" --data phantom --out "$o" 2>>"$o.err" </dev/null | tee -a "$DOCS/frontier.txt"
  log "## eval $label: $A eval --generator $o/generator.safetensors --data phantom --settings synthetic --out $o/eval"
  $A eval --generator "$o/generator.safetensors" --data phantom --settings synthetic --out "$o/eval" 2>>"$o.err" </dev/null | tee -a "$DOCS/frontier.txt"
  grep -h "mean foreground Dice" "$o.err" | tail -1 | tee -a "$DOCS/frontier.txt"
  mkdir -p "$DOCS/phantom-$label" && cp "$o"/audit-*.json "$o"/audit-*.png "$DOCS/phantom-$label/" 2>/dev/null; cp "$o"/eval/eval.json "$o"/eval/eval.md "$DOCS/phantom-$label/" 2>/dev/null
done
log "## done $(date -u)"
