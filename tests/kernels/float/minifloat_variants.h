// The variants of qsim_qdq_variants() as GoogleTest parameters, for the minifloat test suites:
//   INSTANTIATE_TEST_SUITE_P(Variants, Suite, ::testing::ValuesIn(mf_test::variant_indices()),
//                            mf_test::variant_name);
#ifndef MF_TEST_MINIFLOAT_VARIANTS_H
#define MF_TEST_MINIFLOAT_VARIANTS_H

#include <gtest/gtest.h>

#include <string>
#include <vector>

extern "C" {
#include "qsim/qdq.h"
}

namespace mf_test {

// 0 (ref), 1, ... for every compiled variant.
inline std::vector<size_t> variant_indices() {
    size_t n = 0;
    qsim_qdq_variants(&n);
    std::vector<size_t> v;
    for (size_t i = 0; i < n; i++) {
        v.push_back(i);
    }
    return v;
}

// The variant's name ("ref", "avx2", ...) as the test name suffix.
inline std::string variant_name(const ::testing::TestParamInfo<size_t> & info) {
    size_t n = 0;
    return std::string(qsim_qdq_variants(&n)[info.param].name);
}

}  // namespace mf_test

#endif  // MF_TEST_MINIFLOAT_VARIANTS_H
