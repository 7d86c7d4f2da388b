/* Format set-up of qsim/minifloat.h: the constants of a minifloat and of the block formats. */
#include "float/minifloat_common.h"

/* The largest finite value as (unbiased exponent, mantissa field of `mb` bits). */
static void qsim_mf_largest(const qsim_float_format * f, int bias, int * emax, uint32_t * mant) {
    const int      top  = (1 << f->exponent_bits) - 1;
    const uint32_t ones = (1u << f->mantissa_bits) - 1u;
    switch (f->kind) {
        case QSIM_FLOAT_IEEE:
            *emax = top - 1 - bias;
            *mant = ones;
            return;
        case QSIM_FLOAT_FN:  /* the all-ones code is NaN */
            *emax = f->mantissa_bits > 0 ? top - bias : top - 1 - bias;
            *mant = f->mantissa_bits > 0 ? ones - 1u : ones;
            return;
        case QSIM_FLOAT_FNUZ:
        case QSIM_FLOAT_FINITE:
            break;
    }
    *emax = top - bias;
    *mant = ones;
}

qsim_status qsim_minifloat_init(const qsim_float_format * f, qsim_minifloat * out) {
    if (!f || !out || f->exponent_bits < 1 || f->exponent_bits > 8 || f->mantissa_bits < 0 ||
        f->mantissa_bits > 23 || f->kind < QSIM_FLOAT_IEEE || f->kind > QSIM_FLOAT_FINITE) {
        return QSIM_INVALID_ARGUMENT;
    }
    const int mb   = f->mantissa_bits;
    const int bias = (1 << (f->exponent_bits - 1)) - 1 + (f->kind == QSIM_FLOAT_FNUZ);
    const int emin = 1 - bias;
    int       emax;
    uint32_t  mant;
    qsim_mf_largest(f, bias, &emax, &mant);
    if (emax < emin || emax > 127) {
        return QSIM_INVALID_ARGUMENT;  /* no normal binade, or a largest value past fp32's */
    }
    out->shift         = (uint32_t) (23 - mb);
    out->round_bias    = out->shift ? (1u << (out->shift - 1)) - 1u : 0u;
    out->odd_mask      = out->shift ? 1u : 0u;
    out->odd_flip      = (mb == 0 && bias % 2 == 0) ? 1u : 0u;
    out->sub_limit     = emin >= -126 ? (uint32_t) (emin + 127) << 23 : 0x00800000u;
    out->sub_magic     = qsim_pow2f(emin - mb + 23);
    out->max_bits      = ((uint32_t) (emax + 127) << 23) | (mant << out->shift);
    out->over_bits     = (f->saturate || f->kind == QSIM_FLOAT_FINITE) ? out->max_bits
                         : f->kind == QSIM_FLOAT_IEEE                ? QSIM_F32_INF
                                                                     : 0x7fc00000u;
    out->unsigned_zero = f->kind == QSIM_FLOAT_FNUZ;
    return QSIM_SUCCESS;
}

float qsim_minifloat_max(const qsim_minifloat * m) {
    return qsim_bits_f32(m->max_bits);
}

float qsim_minifloat_round(float x, const qsim_minifloat * m) {
    return qsim_mf_round(x, m);
}

qsim_status qsim_block_format_mx(qsim_block_kind kind, const qsim_float_format * elem,
                                 qsim_block_format * out) {
    if (!out || (kind != QSIM_BLOCK_MX_FLOAT && kind != QSIM_BLOCK_MX_INT8)) {
        return QSIM_INVALID_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    out->kind  = kind;
    out->block = 32;
    if (kind == QSIM_BLOCK_MX_INT8) {
        return QSIM_SUCCESS;  /* emax 0: elements in [-2, 2) */
    }
    if (!elem) {
        return QSIM_INVALID_ARGUMENT;
    }
    qsim_float_format sat = *elem;
    sat.saturate          = 1;
    const qsim_status st  = qsim_minifloat_init(&sat, &out->elem);
    out->emax             = (int) (out->elem.max_bits >> 23) - 127;
    return st;
}

qsim_status qsim_block_format_nvfp4(float tensor_scale, qsim_block_format * out) {
    if (!out || !(tensor_scale > 0.0f && tensor_scale <= 3.4028235e38f)) {
        return QSIM_INVALID_ARGUMENT;
    }
    memset(out, 0, sizeof *out);
    const qsim_float_format e2m1 = { 2, 1, QSIM_FLOAT_FINITE, 1 };
    const qsim_float_format e4m3 = { 4, 3, QSIM_FLOAT_FN, 1 };
    out->kind         = QSIM_BLOCK_NVFP4;
    out->elem_max     = 6.0f;
    out->tensor_scale = tensor_scale;
    out->block        = 16;
    const qsim_status st = qsim_minifloat_init(&e2m1, &out->elem);
    return st < 0 ? st : qsim_minifloat_init(&e4m3, &out->scale_fmt);
}

float qsim_block_scale(uint32_t amax_bits, const qsim_block_format * b) {
    return qsim_block_scale_of(amax_bits, b);
}
