// Whether an autograd backward may write into its incoming gradient, and what it writes into
// (qdq_autograd.cpp defines them; range_learning.cpp uses them too).
#pragma once

#include <ATen/core/Tensor.h>

namespace qsim {

// Whether the incoming gradient `g` may be overwritten with dx: a plain dense CPU tensor (no
// tensor subclass or functional tensor: nothing is being traced), not on a graph (no
// create_graph), held by nothing but the backward (no other node, hook or Python object: use
// count 1), covering all of its memory, which it shares with nothing, or only with the base of
// which it is a view when nothing else holds that base (a reshaped matmul gradient).
bool owned_gradient(const at::Tensor & g);

// The tensor an eager backward writes dx of x into, in place: `g` itself when it is owned
// (owned_gradient) and laid out as x; a new copy of `g` laid out as x when x is dense and `g`, a
// plain CPU tensor not on a graph (no create_graph), is not (a permuted view's gradient: the
// kernels run in x's memory order, so writing into `g` would copy it into that order and dx back:
// two copies where this makes one); else an undefined tensor (the caller's allocating backward).
at::Tensor gradient_into(at::Tensor & g, const at::Tensor & x);

}  // namespace qsim
