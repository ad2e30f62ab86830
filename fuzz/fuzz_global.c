/*
 * fuzz_global.c - fuzz target for the global database of a global node
 * (gdb.c): a session of g_* requests from a handful of nodes, and nodes
 * going down. The input is records separated by LF: the first byte of a
 * record picks the node (low three bits: "me" - the global node itself -,
 * "a", "b", "g", "w") and, with its top bit set, makes that node go down;
 * otherwise the rest of the record is the request [TAG, ARGS...] as JSON
 * (records that do not decode are skipped). After the steps the
 * database's invariants must hold (aemp__gdb_check: every view entry
 * held by an owner, every owned key in the view, byte counts and limits),
 * every result code must be one the header names, and every message it
 * returns must be [NODE, [TAG, ...]] to a known node and encodable.
 * Reflection (issue 19): whatever another node sends - also requests
 * naming "me" as the reply's id, the key or the node looked up - leaves
 * our own share of the database as it was (its bytes, checked after
 * every step). The global nodes to dial, followed only through what
 * aemp__gdb_g_drain reports (as the mesh does), are always exactly those
 * the database vouches for (aemp__gdb_check: each peer names at most
 * AEMP_GDB_NODE_GLOBALS_MAX of them).
 */
#include "fuzz.h"

#include "aemp.h"
#include "gdb.h"

static const char *const gl_nodes[] = {"me", "a", "b", "g", "w", "a", "b", "g"};

static void gl_check_out(json_t *out)
{
    for (size_t i = 0; i < json_array_size(out); i++) {
        json_t *m = json_array_get(out, i);
        const char *dest = json_string_value(json_array_get(m, 0));
        json_t *msg = json_array_get(m, 1);
        FUZZ_CHECK(dest && json_array_size(m) == 2);
        int known = 0;
        for (size_t k = 0; k < sizeof gl_nodes / sizeof *gl_nodes; k++)
            known |= !strcmp(dest, gl_nodes[k]);
        FUZZ_CHECK(known);
        const char *tag = json_string_value(json_array_get(msg, 0));
        FUZZ_CHECK(tag && !strncmp(tag, "g_", 2));
        char *text = aemp_json_encode(msg, NULL);
        FUZZ_CHECK(text != NULL);
        free(text);
    }
}

/* The mesh's view: a node reported by a drain is dialled while vouched. */
static void gl_follow(void *ctx, const char *node)
{
    aemp__gdb_t *g = ((void **)ctx)[0];
    json_t *mesh = ((void **)ctx)[1];
    if (aemp__gdb_g_vouched(g, node)) json_object_set_new(mesh, node, json_null());
    else json_object_del(mesh, node);
}

/* Follows the changes; then the view must be exactly the vouched set. */
static void gl_check_mesh(aemp__gdb_t *g, json_t *mesh)
{
    void *ctx[2] = {g, mesh};
    FUZZ_CHECK(aemp__gdb_g_drain(g, gl_follow, ctx) == 0);
    FUZZ_CHECK(!aemp__gdb_g_pending(g));
    aemp__map_iter_t it = {0};
    size_t n = 0;
    for (const char *id; aemp__gdb_g_next(g, &it, &id); n++)
        FUZZ_CHECK(json_object_get(mesh, id) != NULL);
    FUZZ_CHECK(n == json_object_size(mesh));
}

FUZZ_TARGET(global)
{
    json_t *mesh = json_object();
    aemp__gdb_t *g = aemp__gdb_new("me");
    FUZZ_CHECK(g != NULL);
    json_t *out = json_array();
    size_t pos = 0, steps = 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) : size;
        uint8_t sel = data[pos];
        const char *src = gl_nodes[sel & 7];
        json_array_clear(out);
        size_t own = aemp__gdb_node_bytes(g, "me");
        if (sel & 0x80) {
            int rc = aemp__gdb_node_down(g, src, out);
            FUZZ_CHECK(rc == 0 || rc == AEMP_ENOMEM);
        } else if (end > pos + 1) {
            json_t *req = aemp_json_decode((const char *)data + pos + 1, end - pos - 1, 0, NULL, 0);
            if (req) {
                char why[256] = "";
                int rc = aemp__gdb_feed(g, src, req, out, why, sizeof why);
                FUZZ_CHECK(rc == 0 || rc == AEMP_EBADMSG || rc == AEMP_ELIMIT || rc == AEMP_ESTATE ||
                           rc == AEMP_ENOMEM);
                FUZZ_CHECK(!rc || rc == AEMP_ENOMEM || *why);
                if (rc == AEMP_EBADMSG || rc == AEMP_ELIMIT || rc == AEMP_ESTATE)
                    FUZZ_CHECK(json_array_size(out) == 0);
                json_decref(req);
            }
        }
        gl_check_out(out);
        if (strcmp(src, "me")) FUZZ_CHECK(aemp__gdb_node_bytes(g, "me") == own);
        /* the full check walks everything: after each of the first
         * steps, then every eighth, and at the end */
        if (++steps <= 8 || !(steps & 7)) {
            FUZZ_CHECK(aemp__gdb_check(g) == 0);
            gl_check_mesh(g, mesh);
        }
        pos = end + 1;
    }
    /* everyone goes: nothing may stay */
    for (size_t k = 0; k < 5; k++) {
        json_array_clear(out);
        aemp__gdb_node_down(g, gl_nodes[k], out);
        gl_check_out(out);
    }
    FUZZ_CHECK(aemp__gdb_nodes(g) == 0 && aemp__gdb_bytes(g) == 0);
    FUZZ_CHECK(aemp__gdb_family(g, "'l") == NULL);
    FUZZ_CHECK(aemp__gdb_check(g) == 0);
    gl_check_mesh(g, mesh);
    FUZZ_CHECK(json_object_size(mesh) == 0);
    json_decref(mesh);
    json_decref(out);
    aemp__gdb_free(g);
    return 0;
}
