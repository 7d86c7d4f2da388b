/*
 * qdq_variants.c: the qdq kernel variants against each other in one process, on the same data
 * (a benchmark: it asserts nothing). It walks the list that dispatch and the kernel tests walk
 * (qsim_qdq_variants), so a new variant is timed as soon as it is listed. Rows, per tensor on a
 * signed grid, fp32 values of a fixed-seed normal distribution, run into a second buffer as the
 * ops write a module's output in place (x copied in first, untimed):
 *
 *   qdq            the eval forward (qsim_run_fn)
 *   qdq_mask       the training forward with its clamped bits (qsim_run_mask_fn)
 *   mask_backward  the straight-through backward from those bits (qsim_mask_bwd_fn)
 *
 * Every round calls each supported variant once (interleaved, so load drift hits all alike); a
 * row prints each variant's median ns per value over the rounds and its ratio to the first
 * vector variant (`avx2` on x86-64, which the AVX-512 variant's mask kernels were before they got
 * their own 16-lane forms). Thread CPU time, one thread.
 *
 * Usage (the release build of scripts/test.sh):
 *
 *     cmake --build build/cmake-release --target bench_qdq_variants
 *     build/cmake-release/bench_qdq_variants [values per call (131072)] [rounds (2000)]
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qsim/qdq.h"

#define MAX_VARIANTS 8

typedef enum { ROW_QDQ, ROW_MASK, ROW_MASK_BACKWARD, ROWS } row_kind;

static const char * const kRowNames[ROWS] = { "qdq", "qdq_mask", "mask_backward" };

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double) t.tv_sec + 1e-9 * (double) t.tv_nsec;
}

static int by_value(const void * a, const void * b) {
    const double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* n values of a normal distribution (Box-Muller on a fixed 64-bit LCG). */
static void normal_values(size_t n, float * x) {
    uint64_t s = 42;
    for (size_t i = 0; i < n; i++) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            s    = s * 6364136223846793005ull + 1442695040888963407ull;
            u[k] = ((double) (s >> 11) + 0.5) / 9007199254740992.0;
        }
        x[i] = (float) (sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]));
    }
}

/* One call of row `row` of variant k; returns its thread time. */
static double time_call(const qsim_qdq_kernels * k, row_kind row, size_t n, const float * x,
                        float * y, uint8_t * bits, const float * dy, qsim_grid g) {
    if (row != ROW_MASK_BACKWARD) {
        memcpy(y, x, n * sizeof *y);
    }
    const double t0 = thread_seconds();
    if (row == ROW_QDQ) {
        k->qdq(n, y, y, g);
    } else if (row == ROW_MASK) {
        k->qdq_mask(n, y, y, bits, g, -INFINITY);
    } else {
        k->qdq_mask_backward(n, bits, dy, y);
    }
    return thread_seconds() - t0;
}

static void run_row(row_kind row, int bitwidth, size_t n, long rounds, const float * x,
                    const float * dy, float * y, uint8_t * bits) {
    size_t                   count;
    const qsim_qdq_kernels * v    = qsim_qdq_variants(&count);
    const float              qmax = (float) ((1 << (bitwidth - 1)) - 1);
    const qsim_grid          g    = { 4.0f / qmax, 3.0f, -qmax - 1.0f, qmax };
    double *                 t    = malloc(sizeof(double) * (size_t) rounds * MAX_VARIANTS);
    size_t                   used = count < MAX_VARIANTS ? count : MAX_VARIANTS;
    if (!t) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    v[0].qdq_mask(n, x, y, bits, g, -INFINITY); /* bits for the backward row */
    for (long r = 0; r < rounds; r++) {
        for (size_t k = 0; k < used; k++) {
            t[k * (size_t) rounds + (size_t) r] =
                v[k].supported() ? time_call(&v[k], row, n, x, y, bits, dy, g) : 0.0;
        }
    }
    double base = 0.0;
    printf("%-14s %2d-bit", kRowNames[row], bitwidth);
    for (size_t k = 0; k < used; k++) {
        if (!v[k].supported()) {
            continue;
        }
        double * tk = t + k * (size_t) rounds;
        qsort(tk, (size_t) rounds, sizeof *tk, by_value);
        const double ns = tk[rounds / 2] * 1e9 / (double) n;
        base = base == 0.0 && k > 0 ? ns : base;
        printf("  %s %.3f ns", v[k].name, ns);
        if (k > 0) {
            printf(" (%.2fx)", ns / base);
        }
    }
    printf("\n");
    free(t);
}

int main(int argc, char ** argv) {
    const size_t n      = argc > 1 ? (size_t) strtoull(argv[1], NULL, 10) : 131072;
    const long   rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 2000;
    if (n == 0 || rounds <= 0) {
        fprintf(stderr, "usage: %s [values per call > 0] [rounds > 0]\n", argv[0]);
        return 2;
    }
    float *   x    = malloc(n * sizeof *x), * dy = malloc(n * sizeof *dy), * y = malloc(n * sizeof *y);
    uint8_t * bits = malloc((n + 7) / 8);
    if (!x || !dy || !y || !bits) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    normal_values(n, x);
    normal_values(n, dy);
    printf("%zu values per call, %ld rounds, median ns per value (ratio to the first vector "
           "variant)\n", n, rounds);
    for (int row = 0; row < ROWS; row++) {
        for (int bw = 8; bw <= 16; bw += 8) {
            run_row((row_kind) row, bw, n, rounds, x, dy, y, bits);
        }
    }
    free(x), free(dy), free(y), free(bits);
    return 0;
}
