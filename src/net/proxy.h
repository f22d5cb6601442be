/* proxy.h - the PROXY protocol header (HAProxy's, versions 1 and 2) that a load balancer
 * puts in front of a connection to tell the real client's address.
 *
 * A pure parser: bytes in, result out, no I/O, no allocation.
 */
#ifndef MIDGE_PROXY_H
#define MIDGE_PROXY_H

#include <stddef.h>
#include <stdint.h>

/* The longest v2 address block plus TLVs Midge accepts (the 16-bit length field allows
 * 65535): a header is never longer than 16 + PROXY_V2_MAX_LEN bytes, a v1 line never longer
 * than 107, so PROXY_MAX_HEADER bytes of buffer always suffice. */
#define PROXY_V2_MAX_LEN 2048
#define PROXY_MAX_HEADER (16 + PROXY_V2_MAX_LEN)

typedef struct proxy_result {
    int version;        /* 1 or 2 */
    int local;          /* v2 LOCAL command or v1 UNKNOWN: keep the socket's own address */
    char addr[64];      /* source address as text ("192.0.2.1", "2001:db8::1") */
    uint16_t port;      /* source port */
    const char *error;  /* static text when proxy_parse returns -1, e.g.
                         * "PROXY v1: line longer than 107 bytes" */
} proxy_result_t;

/* Parse a header at the start of p[0..n) of a connection whose listener expects
 * `version` (1 or 2; a listener accepting either passes 0). Returns the header's length
 * when it is complete and valid (the bytes after it belong to the next layer), 0 when more
 * bytes are needed, -1 when it is invalid (r->error says why).
 *
 * 0 is returned only while p[0..n) can still become a valid header, so a connection that
 * starts with anything else is refused at its first wrong byte (an unfinished v1 IPv6
 * address is checked a little loosely, fully once the space after it arrives).
 * v2: LOCAL, and PROXY over AF_UNSPEC, AF_UNIX, UDP or an unspecified transport, set
 * r->local (the socket's own address stands); only TCP over IPv4/IPv6 fills addr and port.
 * TLVs are skipped, but each must fit in the announced length. */
long proxy_parse(const uint8_t *p, size_t n, int version, proxy_result_t *r);

#endif
