/*
 * addr.h - endpoints and noderefs: parsing numeric "ip:port" /
 * "[ip6]:port" endpoints, formatting socket addresses the way Perl's
 * AnyEvent::Socket::format_hostport does, and resolving user-given
 * noderefs (PROTOCOL §1).
 */
#ifndef AEMP_ADDR_H
#define AEMP_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Parses a numeric endpoint. Returns 0 or AEMP_EINVAL. */
int aemp__ep_parse(const char *ep, struct sockaddr_storage *sa, socklen_t *len);
/* "1.2.3.4:80" or "[::1]:80" into out (at least 64 bytes). */
void aemp__ep_format(const struct sockaddr *sa, char *out, size_t n);
/* Splits a noderef on ','; returns a NULL-terminated malloc'd array of
 * malloc'd strings (free with aemp__strv_free), NULL on ENOMEM. */
char **aemp__split(const char *s, char sep, size_t *count);
void aemp__strv_free(char **v);
/* This host's name into buf (n bytes, NUL-terminated); "localhost" when
 * the system does not say. */
void aemp__hostname(char *buf, size_t n);
/* Joins n strings with sep; malloc'd, NULL on ENOMEM. */
char *aemp__join(char *const *v, size_t n, char sep);

#endif
