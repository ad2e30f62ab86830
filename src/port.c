/*
 * port.c - ports, monitors and the node-port services (placeholder: hands
 * every message to the raw delivery hook).
 */
#include "node_int.h"

void aemp__ports_dispatch(aemp_node_t *n, const char *src, json_t *msg)
{
    const char *id = json_string_value(json_array_get(msg, 0));
    if (n->cfg.on_message && id) n->cfg.on_message(n->cfg.message_ud, n, src, id, msg);
    json_decref(msg);
}

void aemp__ports_peer_failed(aemp_node_t *n, const char *noderef, const char *msg)
{
    (void)n;
    (void)noderef;
    (void)msg;
}

void aemp__ports_free(aemp_node_t *n)
{
    (void)n;
}
