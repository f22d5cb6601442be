/* rwlock.h - the read/write lock of the shared structures (subscription tree, retained
 * store): writer-preferring, because glibc's default (reader-preferring) lets a steady
 * stream of matching threads starve SUBSCRIBE and retained PUBLISH. */
#ifndef MIDGE_RWLOCK_H
#define MIDGE_RWLOCK_H

#include <pthread.h>

/* 0, or an error number from pthread. */
static inline int rwlock_init_writer_preferring(pthread_rwlock_t *lock)
{
    pthread_rwlockattr_t attr;
    int rc = pthread_rwlockattr_init(&attr);
    if (rc != 0)
        return rc;
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return rc;
}

#endif
