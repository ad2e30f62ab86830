/*
 * addr.c - endpoint parsing and formatting, and the blocking resolver for
 * user-given noderefs. The resolver is the only place that may block; the
 * node calls it once at start, never on the data path.
 */
#include "addr.h"
#include "aemp_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ifaddrs.h>
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

/* Writes v in decimal at p; returns the end. */
static char *put_dec(char *p, unsigned v)
{
    char d[10];
    int k = 0;
    do d[k++] = (char)('0' + v % 10); while ((v /= 10));
    while (k) *p++ = d[--k];
    return p;
}

/* "A.B.C.D:PORT" of four address bytes (out: n bytes; every accepted
 * connection's peer address is written so, hence no printf). */
static void format4(const unsigned char *a, unsigned port, char *out, size_t n)
{
    char ep[sizeof "255.255.255.255:65535"], *p = ep;
    for (int i = 0; i < 4; i++) {
        p = put_dec(p, a[i]);
        *p++ = i < 3 ? '.' : ':';
    }
    *(p = put_dec(p, port)) = '\0';
    if ((size_t)(p - ep) < n) memcpy(out, ep, (size_t)(p - ep) + 1);
    else if (n) snprintf(out, n, "%s", ep); /* cut short, as before */
}

void aemp__ep_format(const struct sockaddr *sa, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        format4((const unsigned char *)&s4->sin_addr, ntohs(s4->sin_port), out, n);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            format4(&s6->sin6_addr.s6_addr[12], ntohs(s6->sin6_port), out, n);
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

/* A numeric address and port, as one addrinfo on the stack (ai, with
 * room in sa), without getaddrinfo's set-up: 0, or -1 when either is not
 * numeric. */
static int numeric(const char *host, const char *port, struct addrinfo *ai,
                   struct sockaddr_storage *sa)
{
    char *end;
    unsigned long pn = strtoul(port, &end, 10);
    if (!*port || *end || pn > 65535 || strspn(port, "0123456789") != strlen(port)) return -1;
    memset(ai, 0, sizeof *ai);
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)pn);
        ai->ai_addrlen = sizeof *s4;
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)pn);
        ai->ai_addrlen = sizeof *s6;
    } else {
        return -1;
    }
    ai->ai_family = sa->ss_family;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_addr = (struct sockaddr *)sa;
    return 0;
}

/* Appends the endpoints of host:port (all addresses, no duplicates). */
static int resolve_one(const char *host, const char *port, char ***out, size_t *n)
{
    struct addrinfo hints = {0}, *res = NULL, num;
    struct sockaddr_storage num_sa;
    if (!numeric(host, port, &num, &num_sa)) {
        res = &num;
        goto found;
    }
    hints.ai_socktype = SOCK_STREAM;
    /* a numeric address needs no name service, nor the netlink query
     * AI_ADDRCONFIG makes (a dozen system calls per node started) */
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) == 0 && res) goto found;
    res = NULL;
    hints.ai_flags = AI_ADDRCONFIG;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res) {
        hints.ai_flags = 0; /* loopback-only hosts have no "configured" address */
        if (getaddrinfo(host, port, &hints, &res) != 0 || !res) return AEMP_ERESOLVE;
    }
found:;
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
    if (res != &num) freeaddrinfo(res);
    return rc;
}

void aemp__hostname(char *buf, size_t n)
{
    if (gethostname(buf, n) != 0) snprintf(buf, n, "localhost");
    buf[n - 1] = 0;
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
    aemp__hostname(hostname, sizeof hostname);
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

/* ---- protocol 1: bind and seed entries (PROTOCOL-1 §1) ---- */

int aemp_hostport_parse(const char *spec, const char *hostname, char *host, size_t hostlen,
                        char *port, size_t portlen)
{
    char buf[1024];
    const char *s = spec;
    if (!spec || !host || !port || !hostlen || !portlen) return AEMP_EINVAL;
    if (!hostname) hostname = "";
    /* "" and a bare number N mean this host (port N); AnyEvent::MP 2.02
     * tests /^\d*$/ before parsing */
    if (strspn(spec, "0123456789") == strlen(spec)) {
        int n = *spec ? snprintf(buf, sizeof buf, "%s:%s", hostname, spec)
                      : snprintf(buf, sizeof buf, "%s", hostname);
        if (n < 0 || (size_t)n >= sizeof buf) return AEMP_EINVAL;
        s = buf;
    }
    if (*s == '/') return AEMP_EINVAL; /* a unix socket path */
    while (isspace((unsigned char)*s)) s++;
    const char *h = s, *p;
    size_t hl;
    /* a bare IPv6 address: hex digits and colons (two at least), then
     * dots too; if that run is no IPv6 address the spec is unparsable */
    size_t run = strspn(s, "0123456789abcdefABCDEF:");
    size_t colons = 0;
    for (size_t i = 0; i < run; i++) colons += s[i] == ':';
    if (colons >= 2) {
        run += strspn(s + run, "0123456789abcdefABCDEF.:");
        unsigned char a6[16];
        if (run >= sizeof buf) return AEMP_EINVAL;
        char v6[1024];
        memcpy(v6, s, run);
        v6[run] = 0;
        if (inet_pton(AF_INET6, v6, a6) != 1) return AEMP_EINVAL;
        hl = run;
        p = s + run;
    } else if (*s == '[') {
        const char *close = s + 1 + strcspn(s + 1, "[]");
        if (*close != ']' || close == s + 1) return AEMP_EINVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        p = close + 1;
    } else {
        hl = strcspn(s, "[]: ");
        if (!hl) return AEMP_EINVAL;
        p = s + hl;
    }
    /* the port: after blanks, ':' or '#', up to trailing blanks */
    const char *pe = p;
    if (isspace((unsigned char)*p) || *p == ':' || *p == '#') {
        const char *q = p;
        if (*q == ':' || *q == '#') q++;
        else while (isspace((unsigned char)*q)) q++;
        size_t pl = 0;
        while (q[pl] && q[pl] != ':' && !isspace((unsigned char)q[pl])) pl++;
        const char *rest = q + pl;
        while (isspace((unsigned char)*rest)) rest++;
        if (pl && !*rest) {
            if (pl >= portlen) return AEMP_EINVAL;
            memcpy(port, q, pl);
            port[pl] = 0;
            pe = NULL;
        }
    }
    if (pe) {
        while (isspace((unsigned char)*pe)) pe++;
        if (*pe) return AEMP_EINVAL;
        if (portlen < 2) return AEMP_EINVAL;
        strcpy(port, "0");
    }
    if (!strcmp(port, "*")) strcpy(port, "0");
    if (hl >= hostlen) return AEMP_EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    /* host names hold no ':' */
    unsigned char a6[16];
    if (strchr(host, ':') && inet_pton(AF_INET6, host, a6) != 1) return AEMP_EINVAL;
    return 0;
}

/* Is this an address 2.02 binds for host "*"? */
static int wanted_local(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        return b[0] != 0x7f;
    }
    if (sa->sa_family == AF_INET6) {
        const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        return (b[0] >= 0x20 && b[0] <= 0x3f) || b[0] == 0xfc || b[0] == 0xfd;
    }
    return 0;
}

static int add_ep(char ***out, size_t *n, const char *ep)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*out)[i], ep)) return 0;
    char **nv = realloc(*out, (*n + 2) * sizeof *nv);
    if (!nv) return AEMP_ENOMEM;
    *out = nv;
    if (!(nv[*n] = strdup(ep))) return AEMP_ENOMEM;
    nv[++*n] = NULL;
    return 0;
}

/* Every wanted address of every interface, IPv4 before IPv6 per
 * interface, with port. */
static int resolve_any(const char *port, char ***out, size_t *n)
{
    struct addrinfo hints = {0}, *pr = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    /* the port may be a service name */
    if (getaddrinfo("0.0.0.0", port, &hints, &pr) != 0 || !pr) return AEMP_ERESOLVE;
    uint16_t pnum = ((struct sockaddr_in *)pr->ai_addr)->sin_port;
    freeaddrinfo(pr);
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs)) return AEMP_ERESOLVE;
    int rc = 0;
    for (struct ifaddrs *i = ifs; i && !rc; i = i->ifa_next) {
        /* the first entry of each interface name does that interface */
        int first = 1;
        for (struct ifaddrs *j = ifs; j != i; j = j->ifa_next)
            if (j->ifa_name && i->ifa_name && !strcmp(j->ifa_name, i->ifa_name)) first = 0;
        if (!first) continue;
        for (int fam = 0; fam < 2 && !rc; fam++)
            for (struct ifaddrs *j = i; j && !rc; j = j->ifa_next) {
                if (!j->ifa_addr || !j->ifa_name || strcmp(j->ifa_name, i->ifa_name)) continue;
                if (j->ifa_addr->sa_family != (fam ? AF_INET6 : AF_INET)) continue;
                if (!wanted_local(j->ifa_addr)) continue;
                struct sockaddr_storage ss;
                memcpy(&ss, j->ifa_addr, fam ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
                if (fam) ((struct sockaddr_in6 *)&ss)->sin6_port = pnum;
                else ((struct sockaddr_in *)&ss)->sin_port = pnum;
                char ep[80];
                aemp__ep_format((struct sockaddr *)&ss, ep, sizeof ep);
                rc = add_ep(out, n, ep);
            }
    }
    freeifaddrs(ifs);
    return rc;
}

/* A numeric port must fit in 16 bits (getaddrinfo would wrap 99999);
 * a service name is left to the resolver. */
static int port_in_range(const char *port)
{
    size_t n = strspn(port, "0123456789");
    if (!n || port[n]) return 1;
    return n <= 5 && strtoul(port, NULL, 10) <= 65535;
}

char *aemp_hostport_resolve(const char *spec, const char *hostname, int *err)
{
    char host[1024], port[256];
    char **eps = NULL, *r = NULL;
    size_t neps = 0, nparts = 0;
    int rc = 0;
    char **parts = aemp__split(spec ? spec : "", ',', &nparts);
    if (!parts) {
        rc = AEMP_ENOMEM;
        goto out;
    }
    /* Perl's split drops trailing empty fields */
    while (nparts && !*parts[nparts - 1]) nparts--;
    for (size_t i = 0; i < nparts && !rc; i++) {
        if (aemp_hostport_parse(parts[i], hostname, host, sizeof host, port, sizeof port) ||
            !port_in_range(port)) {
            rc = AEMP_EINVAL;
            break;
        }
        rc = strcmp(host, "*") ? resolve_one(host, port, &eps, &neps)
                               : resolve_any(port, &eps, &neps);
    }
out:
    if (!rc && !neps) rc = AEMP_ERESOLVE;
    if (!rc && !(r = aemp__join(eps, neps, ','))) rc = AEMP_ENOMEM;
    aemp__strv_free(parts);
    aemp__strv_free(eps);
    if (err) *err = rc;
    return r;
}
