/*
 * variants_dispatch.h (internal): the run-time variant selection shared by the qdq and statistics
 * kernel tables (qdq_dispatch.c, stats_dispatch.c).
 */
#ifndef QSIM_VARIANTS_DISPATCH_H
#define QSIM_VARIANTS_DISPATCH_H

#include <stddef.h>

/* Defines the two public functions over a static array `table` of `type` (a struct whose member
 * `supported` says whether this CPU runs the entry), reference variant first:
 *   const type * variants_fn(size_t * count): the whole table, its length in *count;
 *   const type * best_fn(void): the last entry this CPU supports, else the first; chosen on the
 *   first call and cached (an atomic pointer: a race only chooses the same entry twice). */
#define QSIM_DEFINE_VARIANT_DISPATCH(type, table, variants_fn, best_fn) \
    const type * variants_fn(size_t * count) {                          \
        *count = sizeof table / sizeof table[0];                        \
        return table;                                                   \
    }                                                                   \
                                                                        \
    const type * best_fn(void) {                                        \
        static const type * _Atomic best;                               \
        const type * b = best;                                          \
        if (!b) {                                                       \
            size_t       n;                                             \
            const type * v = variants_fn(&n);                           \
            for (b = &v[0]; n-- > 0;) {                                 \
                if (v[n].supported()) {                                 \
                    b = &v[n];                                          \
                    break;                                              \
                }                                                       \
            }                                                           \
            best = b;                                                   \
        }                                                               \
        return b;                                                       \
    }

#endif /* QSIM_VARIANTS_DISPATCH_H */
