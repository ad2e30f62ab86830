/*
 * map.c - a string-keyed hash map with chaining: a power-of-two table
 * that doubles at load 1 and shrinks on an insert once under load 1/8. Small and predictable. Every message sent or
 * received looks up a peer or a port here, so the hash reads the key a
 * word at a time.
 */
#include "map.h"
#include "aemp.h"

#include <stdlib.h>
#include <string.h>

#define MAP_MIN_SLOTS 16

/* Multiply-xorshift over 8-byte words (the tail zero-padded, the length
 * mixed in): two or three multiplications for a noderef or a port id
 * where a byte-wise hash needs one per byte. */
static size_t hash_str(const char *s)
{
    size_t n = strlen(s);
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return (size_t)(h ^ (h >> 29));
}

/* SipHash-2-4 (Aumasson and Bernstein, 2012): little-endian words, two
 * rounds per word, four to finish. */
#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                            \
    do {                                                                    \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);           \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                              \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                              \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);           \
    } while (0)

static uint64_t le64(const unsigned char *p)
{
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--) w = (w << 8) | p[i];
    return w;
}

static uint64_t sip(uint64_t k0, uint64_t k1, const unsigned char *p, size_t n)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull,
             v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    uint64_t b = (uint64_t)n << 56;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t m = le64(p);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t i = 0; i < n; i++) b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t aemp__siphash24(const unsigned char key[16], const void *p, size_t n)
{
    return sip(le64(key), le64(key + 8), p, n);
}

void aemp__map_key(aemp__map_t *m, const unsigned char key[16])
{
    m->k0 = le64(key);
    m->k1 = le64(key + 8);
}

static size_t hash_of(const aemp__map_t *m, const char *key)
{
    if (!(m->k0 | m->k1)) return hash_str(key);
    return (size_t)sip(m->k0, m->k1, (const unsigned char *)key, strlen(key));
}

static aemp__map_ent_t *find(const aemp__map_t *m, const char *key)
{
    if (!m->nslots) return NULL;
    size_t h = hash_of(m, key);
    for (aemp__map_ent_t *e = m->slots[h & (m->nslots - 1)]; e; e = e->next)
        if (e->hash == h && !strcmp(e->key, key)) return e;
    return NULL;
}

const char *aemp__map_key_of(const aemp__map_t *m, const char *key)
{
    aemp__map_ent_t *e = find(m, key);
    return e ? e->key : NULL;
}

void *aemp__map_get(const aemp__map_t *m, const char *key)
{
    aemp__map_ent_t *e = find(m, key);
    return e ? e->value : NULL;
}

/* Rehashes into n slots (a power of two). */
static int resize(aemp__map_t *m, size_t n)
{
    aemp__map_ent_t **s = calloc(n, sizeof *s);
    if (!s) return AEMP_ENOMEM;
    for (size_t i = 0; i < m->nslots; i++) {
        aemp__map_ent_t *e = m->slots[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = s[e->hash & (n - 1)];
            s[e->hash & (n - 1)] = e;
        }
    }
    free(m->slots);
    m->slots = s;
    m->nslots = n;
    return 0;
}

int aemp__map_set(aemp__map_t *m, const char *key, void *value)
{
    size_t h = hash_of(m, key);
    if (m->nslots) {
        for (aemp__map_ent_t *e = m->slots[h & (m->nslots - 1)]; e; e = e->next)
            if (e->hash == h && !strcmp(e->key, key)) {
                e->value = value;
                return 0;
            }
    }
    if (m->count >= m->nslots && resize(m, m->nslots ? m->nslots * 2 : MAP_MIN_SLOTS))
        return AEMP_ENOMEM;
    /* a table that held many more than it does now shrinks (here, not
     * in a delete, which an iteration may make): to a load of 1/4-1/2 */
    if (m->nslots > MAP_MIN_SLOTS && m->count < m->nslots / 8) {
        size_t n = MAP_MIN_SLOTS;
        while (n < 2 * (m->count + 1)) n *= 2;
        resize(m, n); /* out of memory: stays as large as it was */
    }
    size_t kl = strlen(key) + 1;
    aemp__map_ent_t *e = malloc(sizeof *e + kl);
    if (!e) return AEMP_ENOMEM;
    memcpy(e->key, key, kl);
    e->hash = h;
    e->value = value;
    e->next = m->slots[h & (m->nslots - 1)];
    m->slots[h & (m->nslots - 1)] = e;
    m->count++;
    return 0;
}

void *aemp__map_del(aemp__map_t *m, const char *key)
{
    if (!m->nslots) return NULL;
    size_t h = hash_of(m, key);
    for (aemp__map_ent_t **pp = &m->slots[h & (m->nslots - 1)]; *pp; pp = &(*pp)->next) {
        aemp__map_ent_t *e = *pp;
        if (e->hash == h && !strcmp(e->key, key)) {
            void *v = e->value;
            *pp = e->next;
            free(e);
            m->count--;
            return v;
        }
    }
    return NULL;
}

size_t aemp__map_del_value(aemp__map_t *m, const void *value)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nslots; i++) {
        aemp__map_ent_t **pp = &m->slots[i];
        while (*pp) {
            aemp__map_ent_t *e = *pp;
            if (e->value == value) {
                *pp = e->next;
                free(e);
                m->count--;
                n++;
            } else {
                pp = &e->next;
            }
        }
    }
    return n;
}

void aemp__map_free(aemp__map_t *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        aemp__map_ent_t *e = m->slots[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(m->slots);
    m->slots = NULL;
    m->nslots = m->count = 0;
}

aemp__map_ent_t *aemp__map_next(const aemp__map_t *m, aemp__map_iter_t *it)
{
    aemp__map_ent_t *e = it->next;
    while (!e && it->slot < m->nslots) e = m->slots[it->slot++];
    it->next = e ? e->next : NULL;
    return e;
}
