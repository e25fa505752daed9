#!/bin/sh
# Inside the container of `make docker-simulate`: run `make simulate` with the arguments
# given, then copy every arch's serial log and result line to /out (a folder of the host,
# build/docker/ by default), so that they outlive the container. /out is cleared of earlier
# runs' logs first. Exits with make's status.
#
# Ctrl-C / `docker stop`: the image's init (tini -g) or the container's terminal sends the
# signal to this script's whole process group, so make and everything under it stop; the
# script itself only notes it, copies whatever logs exist and exits 130 (SIGINT) or 143
# (SIGTERM).
set -u
signal=0
trap 'signal=130' INT
trap 'signal=143' TERM
trap 'signal=129' HUP

if [ -d /out ]; then
  rm -f /out/*-simulate.log /out/*-simulate.result
fi

status=0
make simulate "$@" || status=$?
[ "$signal" -eq 0 ] || status=$signal

if [ -d /out ]; then
  for d in build/*/; do
    [ -d "$d" ] || continue
    a=$(basename "$d")
    for f in simulate.log simulate.result; do
      [ -f "$d$f" ] && cp "$d$f" "/out/$a-$f"
    done
  done
  logs=$(ls /out | tr '\n' ' ')
  echo "==> logs copied to the host: ${logs:-none}"
fi
[ "$signal" -eq 0 ] || echo "==> run-simulate.sh: stopped by a signal (exit $status)" >&2
exit $status
