#!/bin/sh
# demo.sh - a short story with a live protocol-1 network (AnyEvent::MP
# 2.x, what today's networks run), run by `make demo`: an rc file with a
# fresh secret, a C seed (a global node keeping the network's database),
# a C node whose echo service is registered in that database, a call to
# it and a time request found through the seed, a walk of the network with
# trace, eval answered by a node that runs no Perl, then a clean shutdown.
# Everything lives in a temporary directory that is removed at the end,
# whatever happens.
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
seed_pid=
worker_pid=
stop() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    stop "$worker_pid"
    stop "$seed_pid"
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# the Perl tools' rc file, here a private one
PERL_ANYEVENT_MP_RC=$dir/rc
export PERL_ANYEVENT_MP_RC

fail() {
    echo "demo: $*" >&2
    for f in seed.err worker.err; do
        if [ -s "$dir/$f" ]; then
            echo "demo: $f:" >&2
            sed 's/^/    /' "$dir/$f" >&2
        fi
    done
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

# Prints a command as a user would type it.
show() {
    printf '$ aemp --protocol 1'
    for word in "$@"; do
        printf ' '
        quote "$word"
    done
}

# Prints a command, then runs it; its output is kept in $out (and shown).
step() {
    show "$@"
    echo
    out=$("$aemp" --protocol 1 "$@") || fail "'aemp --protocol 1 $1' failed"
    [ -n "$out" ] && echo "$out"
    return 0
}

# Waits until file holds text (10 s at most) while pid runs.
wait_for() {
    tries=0
    until grep -q "$2" "$1" 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || return 1
        tries=$((tries + 1))
        [ "$tries" -gt 100 ] && return 1
        sleep 0.1
    done
}

# A port in 20000..59999 (the seed's address must be known to everyone).
random_port() {
    echo $((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
}

echo "Protocol 1 is AnyEvent::MP 2.x's, what today's networks speak. Its nodes"
echo "read the Perl tools' rc file; a seed is a node whose own address is among"
echo "its seeds. One secret for the network, the seed's address for everyone:"
for try in 1 2 3 4 5; do
    port=$(random_port)
    seed=127.0.0.1:$port
    step gensecret setseeds "$seed" setbinds '127.0.0.1:*' profile seed nodeid seed setbinds "$seed"
    echo
    echo "The seed, a C node keeping the network's global database:"
    show run -v profile seed; echo ' &'
    : >"$dir/seed.err"
    "$aemp" --protocol 1 run -v profile seed >"$dir/seed.out" 2>"$dir/seed.err" &
    seed_pid=$!
    wait_for "$dir/seed.err" "starting global service" "$seed_pid" && break
    stop "$seed_pid"
    seed_pid=
    [ "$try" -eq 5 ] && fail "the seed did not start"
    echo "(port $port is taken; another one)"
done
head -n 2 "$dir/seed.out"

echo
echo "A C node with an echo service; it joins through the seed and registers the"
echo "service's port in the global database (family echo):"
show run -v nodeid worker services '["echo"]'; echo ' &'
"$aemp" --protocol 1 run -v nodeid worker services '["echo"]' >"$dir/worker.out" 2>"$dir/worker.err" &
worker_pid=$!
wait_for "$dir/worker.err" "service echo: " "$worker_pid" || fail "the worker did not start"
echo_port=$(sed -n 's/.*service echo: \([^ ]*\).*/\1/p' "$dir/worker.err" | head -n 1)
[ -n "$echo_port" ] || fail "no echo port in the worker's log"
echo "(its log: service echo: $echo_port)"

echo
echo "The commands run as a node of their own that joins through the seed; the"
echo "worker's address comes from the seed's database. Its clock:"
step cal worker time

echo
echo "A remote call as 2.02's aemp makes it: cal appends a reply port, echo sends"
echo "back everything before it, printed as 2.02 prints it:"
step cal "$echo_port" hello 42 '[1,2]' '{"k":"v"}'
[ "$out" = '"hello","42",[1,2],{"k":"v"}' ] || fail "echo answered '$out'"

echo
echo "The network's links, walked from the seed (each node asked for its up_nodes):"
step trace seed
echo "$out" | grep -q '^seed -> .*worker' || fail "trace did not see the worker"

echo
echo "A C node runs no Perl; eval says so at once (2.02's tool exits 255 on it):"
show eval worker '1 + 2'
echo
"$aemp" --protocol 1 eval worker 1 + 2 2>&1
status=$?
[ "$status" -eq 255 ] || fail "eval exited with status $status"

echo
echo "SIGTERM stops the nodes cleanly:"
for who in worker seed; do
    eval "pid=\$${who}_pid"
    echo "\$ kill -TERM $pid"
    kill -TERM "$pid"
    wait "$pid"
    status=$?
    eval "${who}_pid="
    [ "$status" -eq 0 ] || fail "the $who exited with status $status"
done
echo "both stopped (exit status 0)."
exit 0
