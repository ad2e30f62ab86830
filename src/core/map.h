/*
 * map.h - a string-keyed hash map (open hashing with chains) used for the
 * node's peer table, port table and name registry. Keys are copied;
 * values are borrowed pointers.
 */
#ifndef AEMP_MAP_H
#define AEMP_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct aemp__map_ent {
    struct aemp__map_ent *next;
    void *value;
    size_t hash;
    char key[]; /* NUL-terminated copy */
} aemp__map_ent_t;

typedef struct aemp__map {
    aemp__map_ent_t **slots;
    size_t nslots; /* power of two, 0 when empty */
    size_t count;
    /* the key of its hash (aemp__map_key), or 0, 0: the fast unkeyed one */
    uint64_t k0, k1;
} aemp__map_t;

/* Keys the map's hash with 16 secret bytes (SipHash-2-4), before the
 * first insert: for a map whose keys a peer chooses, in numbers, so that
 * nobody can make them all land in one chain. Without it the hash is
 * fast and unkeyed (ports and the like: keys we make or few). */
void aemp__map_key(aemp__map_t *m, const unsigned char key[16]);
/* SipHash-2-4 of n bytes under a 16-byte key (for the map, and its test). */
uint64_t aemp__siphash24(const unsigned char key[16], const void *p, size_t n);

/* The map's own copy of key (valid until key is deleted), or NULL. */
const char *aemp__map_key_of(const aemp__map_t *m, const char *key);
/* Value for key, or NULL. */
void *aemp__map_get(const aemp__map_t *m, const char *key);
/* Sets key to value (replacing). Returns 0 or AEMP_ENOMEM. */
int aemp__map_set(aemp__map_t *m, const char *key, void *value);
/* Removes key; returns its former value or NULL. */
void *aemp__map_del(aemp__map_t *m, const char *key);
/* Removes every key whose value is value; returns how many. */
size_t aemp__map_del_value(aemp__map_t *m, const void *value);
void aemp__map_free(aemp__map_t *m);
/* Iteration: `aemp__map_iter_t it = {0}; while ((e = aemp__map_next(m, &it)))`.
 * The loop may change the value of the entry it was given and may delete
 * that entry (aemp__map_del of its key); any other change to the map
 * ends the iteration's guarantees. */
typedef struct aemp__map_iter {
    size_t slot;
    aemp__map_ent_t *next;
} aemp__map_iter_t;
aemp__map_ent_t *aemp__map_next(const aemp__map_t *m, aemp__map_iter_t *it);

#endif
