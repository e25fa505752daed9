#!/usr/bin/env bash
# The PASS/FAIL table of one `make simulate` run, from the serial log of the root task.
#
# The root task prints one line per scenario, `PASS <name>` or `FAIL <name>: <why>`, then
# `SUMMARY: <passed>/<total> passed` and `SIMULATE-DONE` (root-task/src/scenarios/).
# The run passed only if QEMU reached the marker (qemu-run.sh exit status 0), the summary
# is there, every scenario passed and there was at least one.
#
# usage: sim-report.sh --arch ARCH --log FILE --qemu-status N [--build-seconds S]
#                      [--run-seconds S] [--result FILE]
# --result: where to write a one-line verdict (for the summary of all arches).
# Exit status: 0 if the run passed, 1 otherwise.

set -euo pipefail

arch="" log="" qemu_status="" build_s="?" run_s="?" result=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=$2; shift 2 ;;
    --log) log=$2; shift 2 ;;
    --qemu-status) qemu_status=$2; shift 2 ;;
    --build-seconds) build_s=$2; shift 2 ;;
    --run-seconds) run_s=$2; shift 2 ;;
    --result) result=$2; shift 2 ;;
    *) echo "sim-report.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$arch" ] && [ -n "$log" ] && [ -n "$qemu_status" ] || {
  echo "usage: sim-report.sh --arch ARCH --log FILE --qemu-status N [...]" >&2; exit 2; }

lines=$(tr -d '\r' <"$log" 2>/dev/null | grep -a -E '^(PASS [^ ]+$|FAIL [^ :]+: |SUMMARY: )' || true)
results=$(grep -E '^(PASS|FAIL) ' <<<"$lines" || true)
summary=$(grep -E '^SUMMARY: ' <<<"$lines" | tail -n 1 || true)
n_pass=$(grep -c '^PASS ' <<<"$results" || true)
n_fail=$(grep -c '^FAIL ' <<<"$results" || true)
total=$((n_pass + n_fail))

case "$qemu_status" in
  0) how="" ;;
  124) how="QEMU stopped: no SIMULATE-DONE within the timeout (hang)" ;;
  *) how="QEMU exited before SIMULATE-DONE (status $qemu_status)" ;;
esac
ok=0
if [ "$qemu_status" = 0 ] && [ -n "$summary" ] && [ "$n_fail" = 0 ] && [ "$total" -gt 0 ] \
   && [ "$summary" = "SUMMARY: $n_pass/$total passed" ]; then
  ok=1
fi

echo
if [ $ok = 1 ]; then
  verdict="$n_pass/$total passed (build ${build_s}s, boot+run ${run_s}s)"
else
  if [ -n "$summary" ]; then counts="$n_pass/$total passed"
  else counts="$n_pass passed, $n_fail failed, then no summary"; fi
  verdict="FAILED: $counts${how:+; $how} (build ${build_s}s, boot+run ${run_s}s)"
fi
echo "==> simulate $arch: $verdict"
if [ -n "$results" ]; then
  while IFS= read -r l; do echo "    $l"; done <<<"$results"
fi
if [ -n "$summary" ]; then
  echo "    $summary"
elif [ $ok = 0 ]; then
  echo "    (no SUMMARY line; last lines of $log:)"
  tr -d '\r' <"$log" 2>/dev/null | tail -n 15 | sed 's/^/    | /'
fi
[ -z "$result" ] || echo "$verdict" >"$result"
[ $ok = 1 ]
