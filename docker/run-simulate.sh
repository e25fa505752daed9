#!/bin/sh
# Inside the container of `make docker-simulate`: run `make simulate` with the arguments
# given, then copy every arch's serial log and result line to /out (a folder of the host,
# build/docker/ by default), so that they outlive the container. Exits with make's status.
set -u
status=0
make simulate "$@" || status=$?
if [ -d /out ]; then
  for d in build/*/; do
    a=$(basename "$d")
    for f in simulate.log simulate.result; do
      [ -f "$d$f" ] && cp "$d$f" "/out/$a-$f"
    done
  done
  echo "==> logs copied to the host: $(ls /out | tr '\n' ' ')"
fi
exit $status
