/*
 * svc.c - the built-in services of `aemp run`, each a port registered
 * under its name: in protocol 0 in the node's own registry (clients find
 * it with the node port's `lookup`), in protocol 1 in the global database
 * as 2.02's `db_reg NAME => PORT` does it (family NAME, key the port id,
 * value null; the entry goes when the port dies).
 *
 *   echo   [ELEMENTS..., PORT]  sends [ELEMENTS...] to PORT
 *   exit   [REASON...]          the port kills itself with REASON...; a
 *                               fresh `exit` port is registered at once
 *   count  counts messages; ["report", PORT] sends [COUNT, SECONDS] to
 *          PORT, SECONDS since the first counted message
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

unsigned cli_svc_bit(const char *name)
{
    if (!name) return 0;
    if (!strcmp(name, "echo")) return CLI_SVC_ECHO;
    if (!strcmp(name, "exit")) return CLI_SVC_EXIT;
    if (!strcmp(name, "count")) return CLI_SVC_COUNT;
    return 0;
}

static int echo_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    cli_svc_t *s = ud;
    size_t n = json_array_size(msg);
    const char *to = n ? json_string_value(json_array_get(msg, n - 1)) : NULL;
    if (!to) {
        if (s->verbose) cli_logf(s->prog, "echo: message without a reply port, dropped");
        return AEMP_KEEP;
    }
    json_t *reply = json_array();
    for (size_t i = 0; reply && i + 1 < n; i++)
        json_array_append(reply, json_array_get(msg, i));
    if (!reply) return AEMP_KEEP;
    int rc = aemp_send(aemp_port_node(port), to, reply);
    if (rc && s->verbose) cli_logf(s->prog, "echo: cannot reply to %s: %s", to, aemp_strerror(rc));
    return AEMP_KEEP;
}

static int count_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    cli_svc_t *s = ud;
    const char *tag = json_string_value(json_array_get(msg, 0));
    const char *to = json_string_value(json_array_get(msg, 1));
    if (json_array_size(msg) == 2 && tag && !strcmp(tag, "report") && to) {
        double secs = s->count ? ev_time() - s->first : 0.0;
        json_t *reply = json_pack("[If]", (json_int_t)s->count, secs);
        if (reply) aemp_send(aemp_port_node(port), to, reply);
        return AEMP_KEEP;
    }
    if (!s->count++) s->first = ev_time();
    return AEMP_KEEP;
}

/* A new port for the service name with callback fn, registered. */
static int start_one(cli_svc_t *s, const char *name, aemp_recv_fn fn)
{
    aemp_port_t *p = aemp_port_new(s->node, fn, s);
    if (!p) return AEMP_ENOMEM;
    int rc = s->global ? aemp_db_reg(s->node, name, aemp_port_id(p), NULL)
                       : aemp_reg(s->node, name, aemp_port_id(p));
    if (rc) aemp_port_kill(p, NULL);
    else if (s->verbose) cli_logf(s->prog, "service %s: %s", name, aemp_port_id(p));
    return rc;
}

static int exit_cb(aemp_port_t *port, json_t *msg, void *ud)
{
    cli_svc_t *s = ud;
    /* a copy: msg belongs to the library, the reason is stolen */
    json_t *reason = json_copy(msg);
    if (s->verbose) {
        char *text = aemp_json_encode(msg, NULL);
        cli_logf(s->prog, "exit: %s dies with %s", aemp_port_id(port), text ? text : "?");
        free(text);
    }
    aemp_port_kill(port, reason);
    int rc = start_one(s, "exit", exit_cb);
    if (rc) cli_logf(s->prog, "exit: cannot register a new port: %s", aemp_strerror(rc));
    return AEMP_KEEP;
}

int cli_svc_start(cli_svc_t *s, unsigned mask)
{
    int rc = 0;
    if ((mask & CLI_SVC_ECHO) && (rc = start_one(s, "echo", echo_cb))) return rc;
    if ((mask & CLI_SVC_EXIT) && (rc = start_one(s, "exit", exit_cb))) return rc;
    if ((mask & CLI_SVC_COUNT) && (rc = start_one(s, "count", count_cb))) return rc;
    return 0;
}
