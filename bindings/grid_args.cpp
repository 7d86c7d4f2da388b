// Argument checks of the grid ops (grid_args.h).
#include "grid_args.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

namespace qsim {

qsim_grid_kind check_grid_kind(const char * op, int64_t grid) {
    TORCH_CHECK_VALUE(grid >= QSIM_GRID_SYMMETRIC && grid <= QSIM_GRID_ASYMMETRIC, op,
                      ": grid must be a qsim_grid_kind value (torchqsim.quantization.GridKind) "
                      "from ", static_cast<int>(QSIM_GRID_SYMMETRIC), " to ",
                      static_cast<int>(QSIM_GRID_ASYMMETRIC), ", got ", grid);
    return static_cast<qsim_grid_kind>(grid);
}

GridArgs check_grid_args(const char * op, int64_t bitwidth, int64_t grid) {
    GridArgs g{ check_grid_kind(op, grid), 0, 0 };
    TORCH_CHECK_VALUE(bitwidth >= 2 && bitwidth <= 16, op, ": bitwidth must be from 2 to 16, got ",
                      bitwidth);
    TORCH_CHECK(qsim_grid_bounds(g.kind, static_cast<int>(bitwidth), &g.qmin, &g.qmax) ==
                    QSIM_SUCCESS,
                op, ": qsim_grid_bounds failed for grid ", grid, ", bitwidth ", bitwidth);
    return g;
}

ZeroPointArgs check_zero_point_args(const at::Tensor & min, const at::Tensor & scale,
                                    int64_t bitwidth, int64_t grid, c10::DeviceType device) {
    const char * op = "zero_point";
    const GridArgs g = check_grid_args(op, bitwidth, grid);
    TORCH_CHECK_TYPE(at::isFloatingType(min.scalar_type()) &&
                         at::isFloatingType(scale.scalar_type()),
                     op, ": min and scale must be floating tensors, got ", min.scalar_type(),
                     " and ", scale.scalar_type());
    TORCH_CHECK_VALUE(min.sizes() == scale.sizes(), op, ": scale shape ", scale.sizes(),
                      " must equal min shape ", min.sizes());
    TORCH_CHECK_VALUE(min.device().type() == device && scale.device() == min.device(), op,
                      ": min and scale must be ", c10::DeviceTypeName(device),
                      " tensors on one device, got ", min.device(), " and ", scale.device());
    const at::Tensor m = min.to(at::kFloat).contiguous();
    return { g, m, scale.to(at::kFloat).contiguous(), at::empty(m.sizes(), m.options()) };
}

}  // namespace qsim
