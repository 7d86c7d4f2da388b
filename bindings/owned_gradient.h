// Whether an autograd backward may write into its incoming gradient (qdq_autograd.cpp defines
// it; range_learning.cpp uses it too).
#pragma once

#include <ATen/core/Tensor.h>

namespace qsim {

// Whether the incoming gradient `g` may be overwritten with dx: a plain dense CPU tensor (no
// tensor subclass or functional tensor: nothing is being traced), not on a graph (no
// create_graph), held by nothing but the backward (no other node, hook or Python object: use
// count 1), covering all of its memory, which it shares with nothing, or only with the base of
// which it is a view when nothing else holds that base (a reshaped matmul gradient).
bool owned_gradient(const at::Tensor & g);

}  // namespace qsim
