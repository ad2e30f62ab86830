/*
 * addr.c - endpoint parsing and formatting, and the blocking resolver for
 * user-given noderefs. The resolver is the only place that may block; the
 * node calls it once at start, never on the data path.
 */
#include "addr.h"
#include "aemp_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

int aemp__ep_parse(const char *ep, struct sockaddr_storage *sa, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *h = ep;
    size_t hl;
    memset(sa, 0, sizeof *sa);
    if (*ep == '[') {
        const char *close = strchr(ep, ']');
        if (!close || close[1] != ':') return AEMP_EINVAL;
        h = ep + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(ep, ':');
        if (!colon) return AEMP_EINVAL;
        hl = (size_t)(colon - ep);
    }
    if (hl == 0 || hl >= sizeof host) return AEMP_EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    /* digits only: strtol would also take blanks and a sign, and a
     * noderef from a peer's greeting ends up here */
    const char *d = colon + 1;
    size_t nd = strspn(d, "0123456789");
    if (nd == 0 || d[nd]) return AEMP_EINVAL;
    long port = 0;
    for (size_t i = 0; i < nd; i++)
        if ((port = port * 10 + (d[i] - '0')) > 65535) return AEMP_EINVAL;
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof *s4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof *s6;
        return 0;
    }
    return AEMP_EINVAL;
}

void aemp__ep_format(const struct sockaddr *sa, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        snprintf(out, n, "%s:%u", host, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], host, sizeof host);
            snprintf(out, n, "%s:%u", host, ntohs(s6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
            snprintf(out, n, "[%s]:%u", host, ntohs(s6->sin6_port));
        }
    } else {
        snprintf(out, n, "unknown:0");
    }
}

char **aemp__split(const char *s, char sep, size_t *count)
{
    size_t n = 1;
    for (const char *p = s; *p; p++) n += *p == sep;
    char **v = calloc(n + 1, sizeof *v);
    if (!v) return NULL;
    size_t i = 0;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == sep || !*p) {
            v[i] = strndup(start, (size_t)(p - start));
            if (!v[i]) {
                aemp__strv_free(v);
                return NULL;
            }
            i++;
            if (!*p) break;
            start = p + 1;
        }
    }
    if (count) *count = i;
    return v;
}

void aemp__strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

char *aemp__join(char *const *v, size_t n, char sep)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(v[i]) + 1;
    char *out = malloc(len), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        if (i) *p++ = sep;
        memcpy(p, v[i], l);
        p += l;
    }
    *p = 0;
    return out;
}

/* Appends the endpoints of host:port (all addresses, no duplicates). */
static int resolve_one(const char *host, const char *port, char ***out, size_t *n)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res) {
        hints.ai_flags = 0; /* loopback-only hosts have no "configured" address */
        if (getaddrinfo(host, port, &hints, &res) != 0 || !res) return AEMP_ERESOLVE;
    }
    int rc = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        char ep[80];
        aemp__ep_format(ai->ai_addr, ep, sizeof ep);
        int dup = 0;
        for (size_t i = 0; i < *n; i++) dup |= !strcmp((*out)[i], ep);
        if (dup) continue;
        char **nv = realloc(*out, (*n + 2) * sizeof *nv);
        if (!nv) { rc = AEMP_ENOMEM; break; }
        *out = nv;
        if (!(nv[*n] = strdup(ep))) { rc = AEMP_ENOMEM; break; }
        nv[++*n] = NULL;
    }
    freeaddrinfo(res);
    return rc;
}

char *aemp_resolve(const char *spec, int *err)
{
    size_t nparts;
    int rc = 0;
    char **parts = aemp__split(spec ? spec : "", ',', &nparts);
    char **eps = NULL;
    size_t neps = 0;
    char hostname[256];
    if (!parts) { rc = AEMP_ENOMEM; goto out; }
    if (gethostname(hostname, sizeof hostname) != 0) strcpy(hostname, "localhost");
    hostname[sizeof hostname - 1] = 0;
    for (size_t i = 0; i < nparts && !rc; i++) {
        /* the port points into the part: a long one is not cut short */
        char *p = parts[i], *host = hostname;
        const char *port = "4040";
        char *colon = strrchr(p, ':');
        if (*p == 0) {
            /* default port on this host */
        } else if (strspn(p, "0123456789") == strlen(p)) {
            port = p;
        } else if (*p == '[') {
            char *close = strchr(p, ']');
            if (!close) { rc = AEMP_ERESOLVE; break; }
            *close = 0;
            host = p + 1;
            if (close[1] == ':') port = close + 2;
            else if (close[1]) { rc = AEMP_ERESOLVE; break; }
        } else if (colon && strchr(p, ':') == colon) {
            *colon = 0;
            host = p;
            port = colon + 1;
        } else {
            host = p; /* a name, or a bare IPv6 address */
        }
        rc = resolve_one(host, port, &eps, &neps);
        if (rc == AEMP_ERESOLVE && host == hostname)
            rc = resolve_one("127.0.0.1", port, &eps, &neps);
    }
out:;
    char *r = NULL;
    if (!rc && !neps) rc = AEMP_ERESOLVE;
    if (!rc && !(r = aemp__join(eps, neps, ','))) rc = AEMP_ENOMEM;
    aemp__strv_free(parts);
    if (eps) aemp__strv_free(eps);
    if (err) *err = rc;
    return r;
}
