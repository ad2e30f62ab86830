/*
 * gdb.h - the global database of a protocol-1 global node (PROTOCOL-1.md
 * §8.3), sans I/O: a database fed with the g_* requests other nodes send
 * and told when a node goes down, which returns the messages to send. No
 * sockets, clocks or node state: global.c drives it, the fuzz target and
 * the transcript tests feed it directly.
 *
 * It keeps every node's shard (what that node, or a global peer on behalf
 * of its slaves, told us: FAMILY -> KEY -> VALUE), the merged view that
 * reads, watches and g_find answer from, who watches which family, and
 * which nodes are global. Merging follows 2.02: a write sets the view;
 * when an owner deletes a key another owner still holds, the view reverts
 * to that owner's value (a slave's before a global peer's, the most
 * recently written first); the last owner's delete removes it.
 */
#ifndef AEMP_GDB_H
#define AEMP_GDB_H

#include "aemp.h"
#include "aemp_int.h"
#include "map.h"

typedef struct aemp__gdb aemp__gdb_t;

/* A database for the global node named self (copied). NULL: no memory. */
aemp__gdb_t *aemp__gdb_new(const char *self);
void aemp__gdb_free(aemp__gdb_t *g);

/* Feeds the node request [TAG, ARGS...] (borrowed) that node src sent:
 * g_slave (bare: nothing to do), g_set, g_upd, g_find, g_db_family,
 * g_db_keys, g_db_values, g_mon1, g_mon0, g_global. The messages to send
 * are appended to out (an array) as [DEST, [TAG, ARGS...]], DEST a node
 * id (self for our own monitors and requests), each to go to DEST's node
 * port. Returns 0 (handled; also for a tag that is none of these, which
 * changes nothing), AEMP_EBADMSG (malformed: nothing changed), AEMP_ELIMIT
 * (over a limit of aemp.h's AEMP_GDB_*: nothing changed), AEMP_ESTATE (a
 * slave setting another node's listeners in 'l: nothing changed) or
 * AEMP_ENOMEM;
 * on failure why (whylen bytes) says precisely what was wrong. */
int aemp__gdb_feed(aemp__gdb_t *g, const char *src, json_t *req, json_t *out, char *why,
                   size_t whylen);
/* aemp__gdb_feed of the request whose tag (NULL: not a request) and
 * arguments (an array, borrowed) come apart, as a node's dispatch has
 * them: nothing is copied. */
int aemp__gdb_request(aemp__gdb_t *g, const char *src, const char *tag, json_t *args, json_t *out,
                      char *why, size_t whylen);
/* Node went down: its entries leave the view (g_upd F {} [KEYS] to the
 * other globals for a slave's, g_chg2 F {} [KEYS] to the watchers), its
 * watches end, and it is no global node any more. Returns 0 or
 * AEMP_ENOMEM (the node is forgotten either way). */
int aemp__gdb_node_down(aemp__gdb_t *g, const char *node, json_t *out);

/* The view's family (an object, borrowed until the next feed), or NULL. */
json_t *aemp__gdb_family(const aemp__gdb_t *g, const char *family);
/* Whether node watches family (g_mon1). */
int aemp__gdb_watches(const aemp__gdb_t *g, const char *node, const char *family);
/* The budget of node's changes (global.c keeps it), in node's part of
 * the database (made here when it has none yet, as its request would):
 * it goes with the node's entries, so each link starts it anew, and
 * costs no allocation of its own. NULL: out of memory. */
aemp__bucket_t *aemp__gdb_change_budget(aemp__gdb_t *g, const char *node);
/* To how many nodes a change of family by node goes: the family's
 * watchers, and the other global nodes when node is a slave (or not yet
 * known). */
size_t aemp__gdb_fanout(const aemp__gdb_t *g, const char *node, const char *family);
/* Whether node announced itself as global (g_global) and is not down. */
int aemp__gdb_is_global(const aemp__gdb_t *g, const char *node);
/* The global nodes to keep links to: the keys of 'g that our own share
 * or a global peer's holds (a slave's 'g keys vouch for nobody), at most
 * AEMP_GDB_NODE_GLOBALS_MAX from each peer. Whether node is one: */
int aemp__gdb_g_vouched(const aemp__gdb_t *g, const char *node);
/* Whether that may have changed for some node since the last drain. */
int aemp__gdb_g_pending(const aemp__gdb_t *g);
/* Calls fn for each node for which it may have changed since the last
 * drain, and forgets them (fn may feed the database: what that changes
 * waits for the next drain). Returns 1 when changes could not all be
 * noted (out of memory): then fn was not called, and the driver compares
 * all (aemp__gdb_g_next) instead. */
int aemp__gdb_g_drain(aemp__gdb_t *g, void (*fn)(void *ctx, const char *node), void *ctx);
/* The driver could not act on a change (out of memory): the next drain
 * returns 1, so that it compares all again. */
void aemp__gdb_g_redo(aemp__gdb_t *g);
/* Iteration over those nodes: `aemp__map_iter_t it = {0}; while
 * (aemp__gdb_g_next(g, &it, &node))`; no change to the database while it
 * runs. */
int aemp__gdb_g_next(const aemp__gdb_t *g, aemp__map_iter_t *it, const char **node);
/* Nodes with a shard or a watch, and bytes their shards hold. */
size_t aemp__gdb_nodes(const aemp__gdb_t *g);
size_t aemp__gdb_bytes(const aemp__gdb_t *g);
/* entries in all shards */
size_t aemp__gdb_entries(const aemp__gdb_t *g);
/* What an entry key -> v counts in the byte limits (about its JSON). */
size_t aemp__gdb_cost(const char *key, const json_t *v);
/* Bytes node's shard holds (0: none). */
size_t aemp__gdb_node_bytes(const aemp__gdb_t *g, const char *node);
/* Holders looked at by deletes so far, all keys together: a delete looks
 * only at its key's holders, so this grows with the keys deleted times
 * the shards holding each, never with all shards (for tests). */
unsigned long aemp__gdb_holder_visits(const aemp__gdb_t *g);
/* Checks the invariants (every view entry has an owner holding it, every
 * owned key is in the view, each key's list of holders is exactly the
 * shards holding it, byte counts add up, limits hold). 0 when they hold,
 * else the line that failed (for tests and the fuzzer). */
int aemp__gdb_check(const aemp__gdb_t *g);

#endif
