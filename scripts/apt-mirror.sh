#!/bin/sh
# Print the URI of the apt source this machine already uses for Debian suite $1 (for
# example `bookworm`), so that a suite added next to it (bookworm-backports) comes from the
# same mirror: the project itself names no package host. Reads deb822 `.sources` files and
# one-line `.list` files under /etc/apt (or under $APT_ETC). Exit status 1 if none serves it.
suite=${1:?usage: apt-mirror.sh SUITE}
etc=${APT_ETC:-/etc/apt}

# deb822 stanzas: the first with `Suites:` naming $suite exactly.
for f in "$etc"/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  awk -v s="$suite" '
    function flush() {
      if (uris != "" && index(" " suites " ", " " s " ") > 0 && enabled) { print uris; found = 1; exit }
      uris = ""; suites = ""; enabled = 1
    }
    BEGIN { enabled = 1 }
    /^[ \t]*$/ { flush(); next }
    /^#/ { next }
    /^URIs:/ { sub(/^URIs:[ \t]*/, ""); split($0, u, /[ \t]+/); uris = u[1]; next }
    /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0; next }
    /^Enabled:[ \t]*no/ { enabled = 0; next }
    END { if (!found) flush() }
  ' "$f"
done | head -n 1 | grep . && exit 0

# One-line format: deb [options] URI SUITE COMPONENTS...
cat "$etc"/sources.list "$etc"/sources.list.d/*.list 2>/dev/null |
  sed -n 's/^deb[ \t]\{1,\}//p' |
  sed 's/^\[[^]]*\][ \t]*//' |
  awk -v s="$suite" '$2 == s { print $1; exit }' | grep . && exit 0
exit 1
