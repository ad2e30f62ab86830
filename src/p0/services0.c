/*
 * services0.c - protocol 0's node requests (PROTOCOL.md §7): the table
 * of what an AnyEvent::MP 0.4 node serves at its node port, and the
 * requests only this dialect has. The shapes are checked, and the shared
 * handlers live, in src/node/services.c.
 */
#include "p0.h"
#include "services.h"

#define ARG(i) AEMP__ARG(args, i)

static void svc_lookup(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__svc_reply(n, args, 1, json_pack("[s?]", aemp_lookup(n, ARG(0))));
}

static void svc_eval(aemp_node_t *n, const char *src, json_t *args)
{
    aemp__svc_reply(n, args, 1, json_pack("[s]", "eval is not supported by this node (no Perl here)"));
}

static void svc_relay_multiple(aemp_node_t *n, const char *src, json_t *args)
{
    for (size_t i = 0; i < json_array_size(args); i++) {
        json_t *one = json_array_get(args, i);
        const char *to = json_string_value(json_array_get(one, 0));
        if (to) aemp__svc_relay_to(n, src, to, aemp__svc_slice(one, 1));
    }
}

static void svc_iam(aemp_node_t *n, const char *src, json_t *args)
{
    if (!aemp__is_self(n, src)) aemp__node_peer_renamed(n, src, ARG(0));
}

/* Protocol 0 (AnyEvent::MP 0.4). */
const aemp__service_t aemp__services_p0[] = {
    {"devnull", "", aemp__svc_ignore},
    {"lookup", "ss", svc_lookup},
    {"time", "s", aemp__svc_time},
    {"eval", "?s", svc_eval},
    {"relay", "s", aemp__svc_relay},
    {"relay_multiple", "", svc_relay_multiple},
    {"mon1", "s", aemp__svc_mon1},
    {"mon0", "s", aemp__svc_mon0},
    {"kil", "s", aemp__svc_kil_notice},
    {"AnyEvent::MP::_spawn", "ss", aemp__svc_spawn},
    {"iam", "s", svc_iam},
    {NULL, NULL, NULL},
};
