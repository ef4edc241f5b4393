#!/usr/bin/env bash
# Before/after in one sitting: the pipeline criterion bench and the quick end-to-end run of
# an older commit (built in a git worktree of its own) against this checkout, alternating
# so that a change in the machine's load hits both sides.
#
#   bash bench/compare.sh REV [--kit DIR] [--reps N] [--no-e2e] [--no-criterion]
#
#   REV          the "before" commit (e.g. the last commit before a refactoring)
#   --kit DIR    the benchmark kit, passed to both sides' bench/run.sh --quick
#   --reps N     criterion runs per side, alternating before/after (default 2)
#   --worktree DIR  where the "before" worktree is (made if missing; default
#                target/bench/before-<rev>)
#
# The worktree goes to target/bench/before-<rev>; both sides build into this checkout's
# target folder (CARGO_TARGET_DIR), so the dependencies they share are built once; each
# side's Node module is copied away by its own run.sh before the other side builds.
# Criterion baselines are saved as before-1, after-1, before-2, … under target/criterion;
# the table printed at the end gives, per bench, the mean of each side and after/before.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
REV=""
KIT=""
REPS=2
BEFORE=""
E2E=1
CRIT=1
while [ $# -gt 0 ]; do
    case "$1" in
        --kit) KIT=${2:?--kit needs a folder}; shift ;;
        --reps) REPS=${2:?--reps needs a number}; shift ;;
        --worktree) BEFORE=${2:?--worktree needs a folder}; shift ;;
        --no-e2e) E2E=0 ;;
        --no-criterion) CRIT=0 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
        *) REV=$1 ;;
    esac
    shift
done
[ -n "$REV" ] || { echo "usage: bash bench/compare.sh REV [--kit DIR] [--reps N]" >&2; exit 2; }
SHORT=$(git rev-parse --short "$REV")
BEFORE=${BEFORE:-$ROOT/target/bench/before-$SHORT}
export CARGO_TARGET_DIR="$ROOT/target"
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

if [ ! -d "$BEFORE" ]; then
    git worktree add --detach "$BEFORE" "$SHORT" >&2
fi
if [ ! -d "$BEFORE/node_modules" ]; then (cd "$BEFORE" && npm ci --no-audit --no-fund >&2); fi

bench() { # side dir baseline
    echo "==== criterion: $1 ($3) ====" >&2
    (cd "$2" && nice cargo bench --target "$TRIPLE" -p camkit --bench pipeline -- --save-baseline "$3" >&2)
}
if [ "$CRIT" = 1 ]; then
    for i in $(seq "$REPS"); do
        bench before "$BEFORE" "before-$i"
        bench after "$ROOT" "after-$i"
    done
    node - "$CARGO_TARGET_DIR/criterion" "$REPS" <<'EOF'
const fs = require('fs'); const path = require('path')
const [root, reps] = [process.argv[2], Number(process.argv[3])]
const ids = []
const walk = (d, rel) => {
  for (const n of fs.readdirSync(d)) {
    const p = path.join(d, n)
    if (!fs.statSync(p).isDirectory()) continue
    if (n === 'before-1') ids.push(rel)
    else if (!/^(before|after)-\d+$|^(new|base|report|change)$/.test(n)) walk(p, rel ? `${rel}/${n}` : n)
  }
}
walk(root, '')
const mean = (id, side) => {
  const v = []
  for (let i = 1; i <= reps; i++) {
    try { v.push(JSON.parse(fs.readFileSync(path.join(root, id, `${side}-${i}`, 'estimates.json'))).mean.point_estimate) } catch {}
  }
  return v
}
const f = (ns) => ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(1)} µs`
console.log('| bench | before (each run) | after (each run) | after / before |')
console.log('|---|---|---|---|')
for (const id of ids.sort()) {
  const b = mean(id, 'before'); const a = mean(id, 'after')
  if (!b.length || !a.length) continue
  const avg = (x) => x.reduce((s, y) => s + y, 0) / x.length
  console.log(`| ${id} | ${b.map(f).join(', ')} | ${a.map(f).join(', ')} | ${(avg(a) / avg(b)).toFixed(3)} |`)
}
EOF
fi

if [ "$E2E" = 1 ]; then
    if [ -z "$KIT" ] && [ -d "$ROOT/../shared/bench/harness" ]; then KIT="$ROOT/../shared/bench"; fi
    [ -n "$KIT" ] || { echo "compare.sh: give the benchmark kit with --kit DIR" >&2; exit 2; }
    KIT=$(cd "$KIT" && pwd)
    # One output folder for both sides: the clips, the kit and the seed's venv are shared.
    echo "==== end to end, quick: before ====" >&2
    (cd "$BEFORE" && bash bench/run.sh --kit "$KIT" --quick --out "$ROOT/target/bench" 2>"$ROOT/target/bench/e2e-before-$SHORT.log") \
        | tee "$ROOT/target/bench/e2e-before-$SHORT.md"
    echo "==== end to end, quick: after ====" >&2
    (bash bench/run.sh --kit "$KIT" --quick --no-browser --out "$ROOT/target/bench" 2>"$ROOT/target/bench/e2e-after.log") \
        | tee "$ROOT/target/bench/e2e-after.md"
fi
