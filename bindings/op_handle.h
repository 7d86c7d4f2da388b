// A typed handle of a registered op by its qualified name ("qsim::..."), for kernels that call
// another op through the dispatcher (below Autograd, so that modes and tracing see the call).
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>

namespace qsim {

template <class Sig> c10::TypedOperatorHandle<Sig> handle(const char * name) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

}  // namespace qsim
