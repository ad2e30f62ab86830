#!/bin/sh
# demo.sh - a short story with a live node, run by `make demo`: a fresh
# secret, a node on a free loopback port, a ping, a lookup of the echo
# service and a remote call to it, then a clean shutdown. Everything lives
# in a temporary directory that is removed at the end, whatever happens.
#
#   sh scripts/demo.sh /abs/path/to/aemp
#
# Exit status 0 when every step did what it should, 1 otherwise.
set -u

aemp=${1:-}
if [ -z "$aemp" ] || [ ! -x "$aemp" ]; then
    echo "usage: sh scripts/demo.sh /path/to/aemp" >&2
    exit 2
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/aemp-demo.XXXXXX") || exit 1
node_pid=
cleanup() {
    if [ -n "$node_pid" ]; then
        kill -TERM "$node_pid" 2>/dev/null
        wait "$node_pid" 2>/dev/null
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

fail() {
    echo "demo: $*" >&2
    if [ -s "$dir/node.err" ]; then
        echo "demo: the node said:" >&2
        sed 's/^/    /' "$dir/node.err" >&2
    fi
    exit 1
}

# A word as it must be typed in a shell: quoted unless plainly safe.
quote() {
    case $1 in
    '' | *[!A-Za-z0-9_./:#@,=+-]*)
        printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")" ;;
    *) printf '%s' "$1" ;;
    esac
}

# Prints a command as a user would type it, then runs it; its output is
# kept in $out (and shown).
step() {
    printf '$ aemp'
    for word in "$@"; do
        printf ' '
        quote "$word"
    done
    echo
    out=$("$aemp" "$@") || fail "'aemp $1' failed"
    [ -n "$out" ] && echo "$out"
    return 0
}

secret=$dir/secret
echo "Every node of a network shares one secret; here is a fresh one:"
step gensecret "$secret"

echo
echo "A node on a free loopback port, in the background; its first line is its noderef:"
echo "\$ aemp run --bind 127.0.0.1:0 --secret-file $secret &"
"$aemp" run --bind 127.0.0.1:0 --secret-file "$secret" >"$dir/node.out" 2>"$dir/node.err" &
node_pid=$!
node=
tries=0
while [ -z "$node" ]; do
    kill -0 "$node_pid" 2>/dev/null || fail "the node did not start"
    tries=$((tries + 1))
    [ "$tries" -gt 100 ] && fail "the node printed no noderef within 10 s"
    sleep 0.1
    node=$(head -n 1 "$dir/node.out")
done
echo "$node"

echo
echo "Is it there? A ping authenticates with the secret and asks the node for the time:"
step ping --secret-file "$secret" "$node"

echo
echo "Its services are ports registered under names; the node port looks them up:"
step cal --secret-file "$secret" "$node" lookup echo
echo_port=$(echo "$out" | sed -n 's/^\["\(.*\)"\]$/\1/p')
[ -n "$echo_port" ] || fail "no echo service in the answer '$out'"

echo
echo "A remote call: cal appends a reply port, echo sends back everything before it."
echo "Arguments starting with [ { or \" are JSON, all others strings:"
step cal --secret-file "$secret" "$echo_port" hello 42 '[1,2]' '{"k":"v"}'
[ "$out" = '["hello","42",[1,2],{"k":"v"}]' ] || fail "echo answered '$out'"

echo
echo "SIGTERM stops the node cleanly:"
echo "\$ kill -TERM $node_pid"
kill -TERM "$node_pid"
wait "$node_pid"
status=$?
node_pid=
[ "$status" -eq 0 ] || fail "the node exited with status $status"
echo "node stopped (exit status 0)."
exit 0
