#!/bin/sh
# Keeps the library's layers apart (README, "Layout"):
#   src/core  sans-I/O codecs, hashes and the handshake engine: no event
#             loop, no sockets, no clocks, nothing of the node or a dialect;
#   src/node  the drivers (links, node, ports, node-port dispatch, TLS):
#             they reach a dialect only through its descriptor, never by
#             including a dialect's own headers or naming its functions;
#   src/pN    one folder per dialect.
# Prints each offending include and fails; silent when all is well.
set -u
cd "$(dirname "$0")/.."
bad=0
say() { echo "layers: $1" >&2; bad=1; }

node_headers=$(cd src/node && ls *.h)
dialect_headers=$(cd src && ls p*/*.h 2>/dev/null | sed 's|.*/||')

for f in src/core/*.c src/core/*.h; do
  grep -n '^[[:space:]]*#[[:space:]]*include' "$f" | while IFS= read -r line; do
    inc=$(printf '%s' "$line" | sed -n 's/.*#[[:space:]]*include[[:space:]]*[<"]\([^>"]*\)[>"].*/\1/p')
    case "$inc" in
      ev.h|sys/socket.h|netinet/*|arpa/*|netdb.h|ifaddrs.h|sys/un.h|poll.h|sys/epoll.h|sys/select.h|time.h|sys/time.h)
        echo "layers: $f:${line%%:*}: core includes <$inc> (no loop, sockets or clocks in the core)" >&2; echo bad ;;
    esac
    for h in $node_headers $dialect_headers; do
      [ "$inc" = "$h" ] && { echo "layers: $f:${line%%:*}: core includes \"$inc\" (the node's or a dialect's internals)" >&2; echo bad; }
    done
  done
done | grep -q bad && bad=1

for f in src/node/*.c src/node/*.h; do
  grep -n '^[[:space:]]*#[[:space:]]*include' "$f" | while IFS= read -r line; do
    inc=$(printf '%s' "$line" | sed -n 's/.*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p')
    for h in $dialect_headers; do
      [ "$inc" = "$h" ] && { echo "layers: $f:${line%%:*}: node layer includes \"$inc\" (a dialect's internals)" >&2; echo bad; }
    done
  done
done | grep -q bad && bad=1

# a node-layer file names no dialect's internals: only the descriptors
# (aemp__dialect_pN, listed once in node.c's registry) reach a dialect
names=$(grep -n -E '\baemp__(p[0-9]+|global|db|gdb|perl04|services_p[0-9]+|rcfile|naming[0-9]+)_?[A-Za-z0-9_]*' \
        src/node/*.c src/node/*.h)
if [ -n "$names" ]; then
  printf '%s\n' "$names" | sed 's/^/layers: node layer names a dialect'"'"'s internals: /' >&2
  bad=1
fi

exit $bad
