/* string.h - the only part of <string.h> the freestanding proof of src/mqtt provides.
 *
 * scripts/check-freestanding.sh compiles src/mqtt with -nostdinc, so the codec sees the
 * compiler's own freestanding headers (stdint.h, stddef.h, stdbool.h) and this file, and
 * nothing else. A codec change that calls any other library function fails to compile
 * there (implicit declaration), before the symbol check even runs. Every embedded C
 * library (newlib, picolibc, ESP-IDF's ROM) has these six functions.
 */
#ifndef MIDGE_FREESTANDING_STRING_H
#define MIDGE_FREESTANDING_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
void *memchr(const void *s, int c, size_t n);
size_t strlen(const char *s);

#endif
