#!/bin/sh
# A long fuzzing campaign: runs each harness (built by `make fuzz-build`) to
# RUNS executions (default ten million), or for MAX_SECONDS if that comes
# first, over a working copy of its corpus,
# then minimises the corpus (-merge=1) into WORK/min/<name>, ready to
# replace tests/fuzz/corpus/<name>. Prints one line of numbers per harness.
#   tests/fuzz/campaign.sh BUILD_FUZZ_DIR WORK [names...]
# Runs at nice 19: it is meant to use idle CPU only. Beside nice-0 work such
# a process gets about 1.5% of a core, so the timeout (wall time) is long:
# with 10 s a slow input under starvation was reported as a timeout.
set -u
fz=$1 work=$2
shift 2
runs=${RUNS:-10000000}
names=${*:-$(ls tests/fuzz/fuzz_*.c | sed 's|tests/fuzz/fuzz_||; s|\.c$||')}
mkdir -p "$work/crashes" "$work/log" "$work/min"
for n in $names; do
    mkdir -p "$work/corpus/$n"
    cp -n tests/fuzz/corpus/$n/* "$work/corpus/$n/" 2>/dev/null
    start=$(date +%s)
    nice -n 19 "$fz/fuzz_$n" -runs="$runs" -max_total_time="${MAX_SECONDS:-0}" -print_final_stats=1 -timeout=120 -rss_limit_mb=2048 \
        -artifact_prefix="$work/crashes/$n-" "$work/corpus/$n" >"$work/log/$n.log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    rm -rf "$work/min/$n" && mkdir -p "$work/min/$n"
    nice -n 19 "$fz/fuzz_$n" -merge=1 "$work/min/$n" "$work/corpus/$n" >"$work/log/$n.merge" 2>&1
    printf '%s: exit %s, %s runs in %s s, peak rss %s MB, cov %s, corpus %s -> %s inputs\n' "$n" "$rc" \
        "$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log/$n.log")" "$secs" \
        "$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/log/$n.log")" \
        "$(grep -o 'cov: [0-9]*' "$work/log/$n.log" | tail -1 | cut -d' ' -f2)" \
        "$(ls "$work/corpus/$n" | wc -l)" "$(ls "$work/min/$n" | wc -l)"
done
