/*
 * matmulnbits.c: MLAS's 8-bit MatMulNBits with int8 compute on AVX-512 VNNI, one fp32 operation
 * at a time in MLAS's order (qsim/matmulnbits.h). Portable C: fmaf is the fp32 FMA of the
 * vfmadd instructions; the file is compiled without contraction (-std=c11), so every other
 * product and sum rounds on its own as the vector instructions do.
 */
#include "qsim/matmulnbits.h"

#include <math.h>
#include <stdlib.h>

#define BLK QSIM_MATMULNBITS_BLOCK

/* MLAS's QuantizeARow_CompInt8 of one row: per block of 32, the int8 values (the tail of the last
 * block zero), the scale and the scaled block sum. */
static void quantize_row(const float * a, size_t k, size_t blocks, int8_t * qa, float * sa,
                         float * ablk) {
    for (size_t blk = 0; blk < blocks; blk++) {
        const size_t begin = blk * BLK, len = k - begin < BLK ? k - begin : BLK;
        float        amax  = 0.0f;
        for (size_t i = 0; i < len; i++) {
            amax = fmaxf(amax, fabsf(a[begin + i]));
        }
        const float scale = amax / 127.0f, inverse = amax != 0.0f ? 127.0f / amax : 0.0f;
        int32_t     sum   = 0;
        for (size_t i = 0; i < BLK; i++) {
            const float q = i < len ? rintf(a[begin + i] * inverse) : 0.0f;
            qa[begin + i] = (int8_t)fmaxf(-128.0f, fminf(127.0f, q));
            sum += qa[begin + i];
        }
        sa[blk]   = scale;
        ablk[blk] = scale * (float)sum;
    }
}

/* The integer product of `count` elements of qa and b from `at`. */
static int32_t dot(const int8_t * qa, const uint8_t * b, size_t k, size_t at, size_t count) {
    int32_t s = 0;
    for (size_t i = at; i < at + count && i < k; i++) {
        s += qa[i] * (int32_t)b[i];
    }
    return s;
}

/* The 8 fp32 lanes of one column's block products (header: the 16-lane groups of 4 blocks, then
 * the remaining blocks 8 lanes each). */
static void column_lanes(const int8_t * qa, const float * sa, const uint8_t * b, const float * sb,
                         size_t k, size_t blocks, float lanes[8]) {
    float        acc[16] = { 0.0f };
    const size_t grouped = blocks - blocks % 4;
    for (size_t g = 0; g < grouped; g += 4) {
        for (size_t l = 0; l < 16; l++) {
            /* 128-bit chunk c of the 16 lanes: lanes 0-1 from blocks g + c/2 (dpbusd lanes 4c' and
             * 4c' + 2, 4c' + 1 and 4c' + 3 of the first 64 bytes), lanes 2-3 from block g + 2 + c/2. */
            const size_t c = l / 4, j = l % 4, blk = g + c / 2 + (j >= 2 ? 2 : 0);
            const size_t lane4 = (c % 2) * 4 + (j % 2); /* dpbusd lane within the block */
            const size_t at    = blk * BLK + lane4 * 4;
            const int32_t s    = dot(qa, b, k, at, 4) + dot(qa, b, k, at + 8, 4);
            acc[l]             = fmaf((float)s, sa[blk] * sb[blk], acc[l]);
        }
    }
    for (size_t l = 0; l < 8; l++) {
        lanes[l] = acc[l] + acc[l + 8];
    }
    for (size_t blk = grouped; blk < blocks; blk++) {
        const float scale = sa[blk] * sb[blk];
        for (size_t l = 0; l < 8; l++) {
            lanes[l] = fmaf((float)dot(qa, b, k, blk * BLK + 4 * l, 4), scale, lanes[l]);
        }
    }
}

/* One output: the lanes summed (FoldAccumulators or hsum_float_8), the bias, the correction. */
static float column_output(const float lanes[8], int grouped, const float * bias, size_t j,
                           const float * ablk, const float * sb, const uint8_t * zp,
                           size_t blocks) {
    float c;
    if (grouped) {
        c = (((lanes[0] + lanes[1]) + lanes[2]) + lanes[3]) +
            (((lanes[4] + lanes[5]) + lanes[6]) + lanes[7]);
    } else {
        c = ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) +
            ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    }
    if (bias) {
        c = c + bias[j];
    }
    float correction = 0.0f;
    for (size_t blk = 0; blk < blocks; blk++) {
        correction = fmaf(ablk[blk], -sb[blk] * (float)zp[blk], correction);
    }
    return c + correction;
}

qsim_status qsim_matmulnbits_q8(const float * a, const uint8_t * b, const float * scale,
                                const uint8_t * zp, const float * bias, float * out, size_t n,
                                size_t k, size_t row_begin, size_t row_end) {
    if (k == 0 || !a || !b || !scale || !zp || !out) {
        return QSIM_INVALID_ARGUMENT;
    }
    const size_t blocks = (k + BLK - 1) / BLK;
    int8_t *     qa     = malloc(blocks * BLK);
    float *      sa     = malloc(2 * blocks * sizeof(float));
    if (!qa || !sa) {
        free(qa);
        free(sa);
        return QSIM_OUT_OF_MEMORY;
    }
    float *      ablk    = sa + blocks;
    const size_t grouped = n - n % 4; /* columns MLAS sums in groups of 4 */
    for (size_t r = row_begin; r < row_end; r++) {
        quantize_row(a + r * k, k, blocks, qa, sa, ablk);
        for (size_t j = 0; j < n; j++) {
            float lanes[8];
            column_lanes(qa, sa, b + j * k, scale + j * blocks, k, blocks, lanes);
            out[r * n + j] = column_output(lanes, j < grouped, bias, j, ablk, scale + j * blocks,
                                           zp + j * blocks, blocks);
        }
    }
    free(qa);
    free(sa);
    return QSIM_SUCCESS;
}
