// Argument checks of the grid ops: the grid kind of the encodings_* ops (stats_cpu.cpp), and the
// zero_point op's grid and tensors (grid_cpu.cpp, grid_cuda.cpp). Every user error becomes a
// c10::Error whose message names the op and the argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>

extern "C" {
#include "qsim/analyzers.h"
}

namespace qsim {

// The grid kind `grid` (a qsim_grid_kind value: Python passes GridKind of a Grid).
qsim_grid_kind check_grid_kind(const char * op, int64_t grid);

// A grid kind and its bounds (qsim_grid_bounds).
struct GridArgs {
    qsim_grid_kind kind;
    int32_t        qmin, qmax;
};

// The grid of kind `grid` at `bitwidth` (2..16).
GridArgs check_grid_args(const char * op, int64_t bitwidth, int64_t grid);

// The zero_point op's checked arguments: its grid, `min` and `scale` (floating tensors of one
// shape on one device of type `device`) as contiguous fp32 (the C rule is an fp32 rule), and the
// fp32 output for the kernel to fill.
struct ZeroPointArgs {
    GridArgs   grid;
    at::Tensor min, scale, zp;

    // The filled output in the dtype of the op's `min` argument.
    at::Tensor result(const at::Tensor & min_arg) const {
        return zp.to(min_arg.scalar_type());
    }
};

ZeroPointArgs check_zero_point_args(const at::Tensor & min, const at::Tensor & scale,
                                    int64_t bitwidth, int64_t grid, c10::DeviceType device);

}  // namespace qsim
