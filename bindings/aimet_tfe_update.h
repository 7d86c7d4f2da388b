// tfe_update: the body of the tfe_first and tfe_merge CPU ops (aimet_tfe_cpu.cpp), for ops that
// compose it without the dispatcher (tfe_batch, aimet_tfe_batch.cpp).
#pragma once

#include <ATen/core/Tensor.h>

namespace qsim {

// The first batch (`first`: qsim_tfe_first, which writes limits) or a later one (qsim_tfe_merge)
// of every row of x [R, n] (float32, CPU) with its batch range lo [R] / hi [R] into the
// histogram states counts [R, 512], edges [R, 513], ranges [R, 2], limits [R, 2]; returns done
// [R] bool: the rows the kernels took (the others are left as they were, for the caller's torch
// ops). Bad arguments raise a ValueError naming `op`.
at::Tensor tfe_update(const char * op, bool first, const at::Tensor & x, const at::Tensor & lo,
                      const at::Tensor & hi, at::Tensor & counts, at::Tensor & edges,
                      at::Tensor & ranges, at::Tensor & limits);

}  // namespace qsim
