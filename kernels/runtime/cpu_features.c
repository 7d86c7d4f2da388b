/*
 * cpu_features.c: run-time checks for the x86 kernel variants (qdq_variants.inc, stats_variants.inc).
 * Compiled without ISA flags, so it runs on any CPU. __builtin_cpu_supports reports a feature
 * only when the OS also saves its registers (GCC and Clang check XGETBV for AVX and AVX-512 state).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "qdq/qdq_variants.h"

int qsim_avx2_supported(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
#else
    return 0;
#endif
}

/* Every flag the *__avx512.c files are compiled with (setup.py, CMakeLists.txt). */
int qsim_avx512_supported(void) {
#if defined(__x86_64__)
    return qsim_avx2_supported() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

/* The avx512 flags and AVX512-BF16 (the *__avx512bf16.c files). */
int qsim_avx512bf16_supported(void) {
#if defined(__x86_64__)
    return qsim_avx512_supported() && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

/* -1 until the first qsim_division_free call decides; then 0 or 1. */
static _Atomic int qsim_division_free_state = -1;

static int qsim_division_free_default(void) {
    const char * env = getenv("QSIM_DIVISION_FREE");
    if (env && (strcmp(env, "0") == 0 || strcmp(env, "1") == 0)) {
        return env[0] == '1';
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_is("intel") != 0;
#else
    return 0;
#endif
}

int qsim_division_free(void) {
    int on = atomic_load_explicit(&qsim_division_free_state, memory_order_relaxed);
    if (on < 0) {
        on = qsim_division_free_default();
        atomic_store_explicit(&qsim_division_free_state, on, memory_order_relaxed);
    }
    return on;
}

void qsim_set_division_free(int on) {
    atomic_store_explicit(&qsim_division_free_state, on != 0, memory_order_relaxed);
}
