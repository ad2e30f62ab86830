/*
 * services.h - what a dialect's table of node requests is built from
 * (services.c): the argument helpers, the one shape check and the
 * handlers that more than one dialect serves. Each dialect keeps its own
 * table and its own requests in its folder (src/p0/services0.c,
 * src/p1/services1.c); the node port (aemp__services_dispatch) reaches a
 * table only through the node's dialect.
 */
#ifndef AEMP_SERVICES_H
#define AEMP_SERVICES_H

#include "node_int.h"

/* The string argument i of a request (NULL when it is no string). */
#define AEMP__ARG(args, i) json_string_value(json_array_get(args, i))

/* A new array of args' elements from index from on (NULL: no memory). */
json_t *aemp__svc_slice(json_t *args, size_t from);
/* Answers a request whose args hold REPLY = [PORTID, ELEMENTS...] from
 * index from on: sends [ELEMENTS..., RESULTS...] to PORTID. Steals
 * results (an array; NULL sends none). */
void aemp__svc_reply(aemp_node_t *n, json_t *args, size_t from, json_t *results);
/* Relays elems (stolen) to the port `to` for src; never to our own node
 * port, which trusts what arrives from ourselves. */
void aemp__svc_relay_to(aemp_node_t *n, const char *src, const char *to, json_t *elems);
/* Looks tag up in table and runs its handler with args (borrowed), once
 * they have the entry's shape (else the request is dropped with a
 * warning). Returns 0, or AEMP_ENOENT when the table has no such tag. */
int aemp__services_run(aemp_node_t *n, const aemp__service_t *table, const char *src,
                       const char *tag, json_t *args);

/* The handlers both dialects serve (the tags are the tables' business). */
void aemp__svc_ignore(aemp_node_t *n, const char *src, json_t *args);  /* anything */
void aemp__svc_time(aemp_node_t *n, const char *src, json_t *args);    /* REPLY... */
void aemp__svc_relay(aemp_node_t *n, const char *src, json_t *args);   /* PORT ELEMENTS... */
void aemp__svc_mon1(aemp_node_t *n, const char *src, json_t *args);    /* PORT: watch it */
void aemp__svc_mon0(aemp_node_t *n, const char *src, json_t *args);    /* PORT: stop */
/* PORT REASON...: the sender's port died, our monitors of it fire */
void aemp__svc_kil_notice(aemp_node_t *n, const char *src, json_t *args);
/* PORT FUNCTION ARGS...: a spawn request */
void aemp__svc_spawn(aemp_node_t *n, const char *src, json_t *args);

#endif
