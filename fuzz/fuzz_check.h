/* fuzz_check.h - CHECK(c): a property a fuzz target asserts about the code under test.
 * Unlike assert(), it stays on in every build and names the file, line and condition
 * before aborting, so libFuzzer saves the input that broke it. */
#ifndef MIDGE_FUZZ_CHECK_H
#define MIDGE_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
