// minifloat_oracle.h: test-side oracles for qsim/minifloat.h, written from the format definitions
// rather than from the kernels' bit tricks:
//   - FormatTable: every finite non-negative value of a format, decoded code by code, and the
//     rounding of a double to it by search (nearest, ties to the even code, overflow past the
//     largest value as IEEE 754 defines it: the tie between max and the next code up goes to the
//     even one);
//   - block_oracle: the OCP MX v1.0 / NVFP4 block conversion written out in double and frexp.
#ifndef QSIM_MINIFLOAT_ORACLE_H
#define QSIM_MINIFLOAT_ORACLE_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

extern "C" {
#include "qsim/minifloat.h"
}

namespace mf_test {

constexpr double kInfD = std::numeric_limits<double>::infinity();

struct FormatTable {
    qsim_float_format   f{};
    std::vector<double> values;  // values[i] is the code i of the positive codes, in order
    double              next = 0;  // the value one code past the largest (as if it were finite)
    std::vector<double> grid;      // values, then next

    explicit FormatTable(const qsim_float_format & fmt) : f(fmt) {
        const int e = fmt.exponent_bits, m = fmt.mantissa_bits;
        const int bias = (1 << (e - 1)) - 1 + (fmt.kind == QSIM_FLOAT_FNUZ);
        const uint32_t top = (1u << e) - 1u, ones = (1u << m) - 1u;
        for (uint32_t ex = 0; ex <= top; ex++) {
            for (uint32_t mt = 0; mt <= ones; mt++) {
                const bool special = (fmt.kind == QSIM_FLOAT_IEEE && ex == top) ||
                                     (fmt.kind == QSIM_FLOAT_FN && ex == top && mt == ones);
                const double frac = std::ldexp(static_cast<double>(mt), -m);
                const double v = ex == 0 ? std::ldexp(frac, 1 - bias)
                                         : std::ldexp(1.0 + frac, static_cast<int>(ex) - bias);
                if (special) {
                    next = v;
                    grid = values;
                    grid.push_back(next);
                    return;
                }
                values.push_back(v);
            }
        }
        // every code finite: the next one continues the last binade (its step, or 2x with no
        // mantissa bits)
        next = m == 0 ? 2 * values.back() : 2 * values.back() - values[values.size() - 2];
        grid = values;
        grid.push_back(next);
    }

    double max() const { return values.back(); }

    // x rounded to the format, as a double (NaN and +-Inf by the overflow rules).
    double round(double x) const {
        if (std::isnan(x)) {
            return x;
        }
        const double a = std::fabs(x);
        double r;
        const bool sat = f.saturate || f.kind == QSIM_FLOAT_FINITE;
        const double over = sat ? max() : f.kind == QSIM_FLOAT_IEEE ? kInfD
                                                                    : std::numeric_limits<double>::quiet_NaN();
        if (std::isinf(a)) {
            r = over;
        } else {
            const std::vector<double> & ext = grid;
            const size_t hi = static_cast<size_t>(std::lower_bound(ext.begin(), ext.end(), a) - ext.begin());
            if (hi >= ext.size()) {
                r = over;
            } else if (hi == 0 || ext[hi] == a) {
                r = ext[hi];
            } else {
                const double dl = a - ext[hi - 1], du = ext[hi] - a;
                const size_t pick = dl < du ? hi - 1 : du < dl ? hi : (hi % 2 == 0 ? hi : hi - 1);
                r = pick == values.size() ? over : ext[pick];
            }
        }
        if (r == 0 && f.kind == QSIM_FLOAT_FNUZ) {
            return 0.0;
        }
        return std::copysign(r, x);
    }
};

}  // namespace mf_test

#endif  // QSIM_MINIFLOAT_ORACLE_H
