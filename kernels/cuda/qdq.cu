// CUDA kernels of the qdq ops: the launchers of qsim/qdq_cuda.h. The arithmetic of one element and
// the index maps live in qdq_cuda_math.h (shared with a host test); this file holds the kernels
// (how threads walk the elements and reduce) and the host code that picks and launches them.
//
// Element-wise kernels: each block walks tiles of kThreads * Data::kPerThread elements, thread t
// handling elements t, t + kThreads, ... of a tile (coalesced), loading all of them before
// computing, so each thread keeps Data::kPerThread loads in flight. Tensors below 2^31 elements use 32-bit index maps.
#include <cuda_runtime.h>

#include <limits>

#include "cuda/qdq_cuda_math.h"
#include "qsim/qdq_cuda.h"

namespace qsim_cuda {
namespace {

constexpr int     kThreads   = 256;                   // threads per block
constexpr int     kPerThread = 4;                     // elements per thread per tile
constexpr int     kWarp      = 32;
constexpr int     kWarps     = kThreads / kWarp;      // warps per block
constexpr int64_t kChunk     = 2048;                  // elements per warp in reductions (fixed:
                                                      // the summation order depends on it)
constexpr int64_t kMaxBlocks = std::numeric_limits<int32_t>::max();

int64_t blocks_for(int64_t work, int64_t per_block) {
    const int64_t b = (work + per_block - 1) / per_block;
    return b < kMaxBlocks ? b : kMaxBlocks;
}

// ---- element-wise kernels ------------------------------------------------------------------

// Forward of op with the qparams of map(f).
template <qsim_op Op, typename Map>
struct ForwardFn {
    static constexpr bool kTwoInputs = false;
    Map          map;
    qsim_qparams p;
    template <typename Index>
    __device__ float operator()(Index f, float x, float) const {
        return forward<Op>(x, grid_at(p, map(f)));
    }
};

// STE backward: dx from (x, dy).
template <qsim_op Op, typename Map>
struct SteFn {
    static constexpr bool kTwoInputs = true;
    Map          map;
    qsim_qparams p;
    template <typename Index>
    __device__ float operator()(Index f, float x, float dy) const {
        return backward<Op>(x, dy, grid_at(p, map(f))).dx;
    }
};

template <bool Half>
struct CastFn {
    static constexpr bool kTwoInputs = false;
    template <typename Index>
    __device__ float operator()(Index, float x, float) const {
        return Half ? round_f16(x) : round_bf16(x);
    }
};

// How the map kernels read and write their data: fp32 as is; fp16/bf16 bit patterns widened on
// load and rounded on store (widen_h16 / narrow_h16), so no fp32 copy of 16-bit data is made.
// kPerThread: elements each thread loads per tile, so that a warp keeps enough bytes in flight.
struct F32Data {
    using Elem = float;
    static constexpr int kPerThread = qsim_cuda::kPerThread;
    __device__ float load(float v) const { return v; }
    __device__ float store(float v) const { return v; }
};

struct H16Data {
    using Elem = uint16_t;
    static constexpr int kPerThread = 2 * qsim_cuda::kPerThread;
    qsim_half_kind kind;
    __device__ float    load(uint16_t v) const { return widen_h16(kind, v); }
    __device__ uint16_t store(float v) const { return narrow_h16(kind, v); }
};

// One tile of map_kernel from `base`; Full: the whole tile is below n (no bounds checks, so the
// compiler schedules the tile freely).
template <bool Full, typename Index, typename Fn, typename Data, typename Elem>
__device__ __forceinline__ void map_tile(Index base, Index n, const Fn & fn, Data d,
                                         const Elem * a, const Elem * b, Elem * out) {
    constexpr int kPer = Data::kPerThread;
    float         va[kPer], vb[kPer];
#pragma unroll
    for (int k = 0; k < kPer; k++) {
        const Index f = base + threadIdx.x + k * kThreads;
        if (Full || f < n) {
            va[k] = d.load(a[f]);
            vb[k] = Fn::kTwoInputs ? d.load(b[f]) : 0.0f;
        }
    }
#pragma unroll
    for (int k = 0; k < kPer; k++) {
        const Index f = base + threadIdx.x + k * kThreads;
        if (Full || f < n) {
            out[f] = d.store(fn(f, va[k], vb[k]));
        }
    }
}

// out[f] = fn(f, a[f], b[f]) for f < n (b read only for two-input functions), through Data's
// load and store. All loads of a tile come before its stores, so out may be a or b exactly.
template <typename Index, typename Fn, typename Data>
__global__ void __launch_bounds__(kThreads)
map_kernel(Index n, Fn fn, Data d, const typename Data::Elem * a, const typename Data::Elem * b,
           typename Data::Elem * out) {
    constexpr Index kDataTile = kThreads * Data::kPerThread;
    for (Index base = static_cast<Index>(blockIdx.x) * kDataTile; base < n;
         base += static_cast<Index>(gridDim.x) * kDataTile) {
        if (n - base >= kDataTile) {
            map_tile<true>(base, n, fn, d, a, b, out);
        } else {
            map_tile<false>(base, n, fn, d, a, b, out);
        }
    }
}

template <typename Index, typename Fn, typename Data = F32Data>
int launch_map(int64_t n, Fn fn, const typename Data::Elem * a, const typename Data::Elem * b,
               typename Data::Elem * out, cudaStream_t stream, Data d = {}) {
    map_kernel<Index><<<static_cast<unsigned>(blocks_for(n, kThreads * Data::kPerThread)),
                        kThreads, 0, stream>>>(
        static_cast<Index>(n), fn, d, a, b, out);
    return static_cast<int>(cudaGetLastError());
}

// Calls body(Index{}) with the narrowest index type for n elements.
template <typename Body>
int with_index(int64_t n, Body body) {
    if (n <= std::numeric_limits<int32_t>::max()) {
        return body(uint32_t{});
    }
    return body(int64_t{});
}

template <qsim_op Op>
struct OpTag {
    static constexpr qsim_op value = Op;
};

// Calls body(OpTag<op>{}).
template <typename Body>
int with_op(qsim_op op, Body body) {
    switch (op) {
        case QSIM_OP_QUANTIZE:   return body(OpTag<QSIM_OP_QUANTIZE>{});
        case QSIM_OP_DEQUANTIZE: return body(OpTag<QSIM_OP_DEQUANTIZE>{});
        case QSIM_OP_QDQ:        break;
    }
    return body(OpTag<QSIM_OP_QDQ>{});
}

int64_t layout_numel(const qsim_layout & l) {
    return l.outer * l.channels * l.inner;
}

// Launches Fn<Op, Map> over the n elements of layout l, Map the cheapest qparam index map of l.
template <template <qsim_op, typename> class Fn, typename Data = F32Data>
int launch_layout(qsim_op op, const qsim_layout & l, const qsim_qparams & p,
                  const typename Data::Elem * a, const typename Data::Elem * b,
                  typename Data::Elem * out, int64_t n, void * stream_ptr, Data d = {}) {
    const cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    if (n != layout_numel(l)) {
        return static_cast<int>(cudaErrorInvalidValue);
    }
    if (n == 0) {
        return 0;
    }
    return with_op(op, [&](auto tag) {
        constexpr qsim_op Op = decltype(tag)::value;
        return with_index(n, [&](auto index) {
            using Index = decltype(index);
            if (is_per_tensor(l)) {
                const Fn<Op, PerTensorIndex<Index>> fn{ {}, p };
                return launch_map<Index>(n, fn, a, b, out, stream, d);
            }
            const Fn<Op, QparamIndex<Index>> fn{ QparamIndex<Index>::make(l), p };
            return launch_map<Index>(n, fn, a, b, out, stream, d);
        });
    });
}

// ---- range-learning reduction --------------------------------------------------------------

// Fixed-order warp sum: lane 0 receives ((v0 + v16) + (v8 + v24)) + ... (a shuffle tree).
__device__ double warp_sum(double v) {
#pragma unroll
    for (int off = kWarp / 2; off > 0; off /= 2) {
        v = add_rn(v, __shfl_down_sync(0xffffffffu, v, off));
    }
    return v;
}

// One warp per chunk `item` (group item / chunks, chunk item % chunks): writes dx of the chunk's
// elements and the chunk's two double sums to partials[2 * item], partials[2 * item + 1]. Each lane
// adds its elements in ascending order, kPerThread loads at a time.
template <qsim_op Op, typename Index>
__global__ void __launch_bounds__(kThreads)
reduce_chunks(GroupMap<Index> gm, qsim_qparams p, int64_t size, int64_t chunks, int64_t items,
              const float * x, const float * dy, float * dx, double * partials) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    for (int64_t item = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / kWarp;
         item < items; item += static_cast<int64_t>(gridDim.x) * kWarps) {
        const int64_t   g     = item / chunks;
        const int64_t   begin = (item - g * chunks) * kChunk;
        const int64_t   end   = begin + kChunk < size ? begin + kChunk : size;
        const Index     first = gm.start(static_cast<Index>(g));
        const qsim_grid grid  = grid_at(p, g);
        double          s = 0.0, z = 0.0;
        for (int64_t j0 = begin + lane; j0 < end; j0 += kWarp * kPerThread) {
            Index f[kPerThread];
            float vx[kPerThread], vdy[kPerThread];
#pragma unroll
            for (int k = 0; k < kPerThread; k++) {
                const int64_t j = j0 + k * kWarp;
                if (j < end) {
                    f[k]   = gm.flat(first, static_cast<Index>(j));
                    vx[k]  = x[f[k]];
                    vdy[k] = dy[f[k]];
                }
            }
#pragma unroll
            for (int k = 0; k < kPerThread; k++) {
                if (j0 + k * kWarp < end) {
                    const Grad d = backward<Op>(vx[k], vdy[k], grid);
                    dx[f[k]] = d.dx;
                    s = add_rn(s, static_cast<double>(d.ds));
                    z = add_rn(z, static_cast<double>(d.dz));
                }
            }
        }
        s = warp_sum(s);
        z = warp_sum(z);
        if (lane == 0) {
            partials[2 * item]     = s;
            partials[2 * item + 1] = z;
        }
    }
}

// GroupThreads threads per group (one warp, or the whole block when a group has many chunks) sum
// the group's `chunks` partials: thread t takes chunks t, t + GroupThreads, ... in order, then
// the shuffle tree, then (whole block) the warps' sums in warp order through the same tree. The
// double is rounded to float once.
template <int GroupThreads>
__global__ void __launch_bounds__(kThreads)
reduce_groups(int64_t groups, int64_t chunks, const double * partials, float * dscale,
              float * dzero_point) {
    constexpr int    kGroupsPerBlock = kThreads / GroupThreads;
    __shared__ double warp_s[kWarps], warp_z[kWarps];
    const int        t    = static_cast<int>(threadIdx.x) % GroupThreads;
    const int        lane = static_cast<int>(threadIdx.x) % kWarp;
    for (int64_t g0 = static_cast<int64_t>(blockIdx.x) * kGroupsPerBlock; g0 < groups;
         g0 += static_cast<int64_t>(gridDim.x) * kGroupsPerBlock) {
        const int64_t g = g0 + threadIdx.x / GroupThreads;
        double        s = 0.0, z = 0.0;
        for (int64_t k = t; g < groups && k < chunks; k += GroupThreads) {
            s = add_rn(s, partials[2 * (g * chunks + k)]);
            z = add_rn(z, partials[2 * (g * chunks + k) + 1]);
        }
        s = warp_sum(s);
        z = warp_sum(z);
        if (GroupThreads > kWarp) {
            if (lane == 0) {
                warp_s[threadIdx.x / kWarp] = s;
                warp_z[threadIdx.x / kWarp] = z;
            }
            __syncthreads();
            s = warp_sum(lane < kWarps ? warp_s[lane] : 0.0);
            z = warp_sum(lane < kWarps ? warp_z[lane] : 0.0);
            __syncthreads();
        }
        if (t == 0 && g < groups) {
            dscale[g]      = static_cast<float>(s);
            dzero_point[g] = static_cast<float>(z);
        }
    }
}

template <int GroupThreads>
int launch_reduce_groups(int64_t groups, int64_t chunks, const double * partials, float * dscale,
                         float * dzero_point, cudaStream_t stream) {
    reduce_groups<GroupThreads>
        <<<static_cast<unsigned>(blocks_for(groups, kThreads / GroupThreads)), kThreads, 0,
           stream>>>(groups, chunks, partials, dscale, dzero_point);
    return static_cast<int>(cudaGetLastError());
}

int64_t chunks_per_group(int64_t size) {
    return (size + kChunk - 1) / kChunk;
}

}  // namespace
}  // namespace qsim_cuda

using namespace qsim_cuda;

extern "C" int qsim_cuda_forward_f32(qsim_op op, const qsim_layout * l, const qsim_qparams * p,
                                     const float * x, float * y, int64_t n, void * stream) {
    return launch_layout<ForwardFn>(op, *l, *p, x, nullptr, y, n, stream);
}

extern "C" int qsim_cuda_backward_f32(qsim_op op, const qsim_layout * l, const qsim_qparams * p,
                                      const float * x, const float * dy, float * dx, int64_t n,
                                      void * stream) {
    return launch_layout<SteFn>(op, *l, *p, x, dy, dx, n, stream);
}

extern "C" int qsim_cuda_forward_h16(qsim_op op, qsim_half_kind kind, const qsim_layout * l,
                                     const qsim_qparams * p, const uint16_t * x, uint16_t * y,
                                     int64_t n, void * stream) {
    return launch_layout<ForwardFn>(op, *l, *p, x, nullptr, y, n, stream, H16Data{ kind });
}

extern "C" int qsim_cuda_backward_h16(qsim_op op, qsim_half_kind kind, const qsim_layout * l,
                                      const qsim_qparams * p, const uint16_t * x,
                                      const uint16_t * dy, uint16_t * dx, int64_t n,
                                      void * stream) {
    return launch_layout<SteFn>(op, *l, *p, x, dy, dx, n, stream, H16Data{ kind });
}

extern "C" int64_t qsim_cuda_reduce_workspace(const qsim_layout * l) {
    int64_t groups = 0, size = 0;
    group_shape(*l, &groups, &size);
    return 2 * groups * chunks_per_group(size);
}

extern "C" int qsim_cuda_backward_reduce_f32(qsim_op op, const qsim_layout * l,
                                             const qsim_qparams * p, const float * x,
                                             const float * dy, float * dx, double * workspace,
                                             float * dscale, float * dzero_point, int64_t n,
                                             void * stream) {
    const cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (n != layout_numel(*l)) {
        return static_cast<int>(cudaErrorInvalidValue);
    }
    int64_t groups = 0, size = 0;
    group_shape(*l, &groups, &size);
    if (n == 0) {
        const size_t bytes = static_cast<size_t>(groups) * sizeof(float);
        const cudaError_t e = cudaMemsetAsync(dscale, 0, bytes, s);
        return static_cast<int>(e != cudaSuccess ? e : cudaMemsetAsync(dzero_point, 0, bytes, s));
    }
    const int64_t chunks = chunks_per_group(size);
    const int64_t items  = groups * chunks;
    const int     rc     = with_op(op, [&](auto tag) {
        constexpr qsim_op Op = decltype(tag)::value;
        return with_index(n, [&](auto index) {
            using Index = decltype(index);
            reduce_chunks<Op, Index><<<static_cast<unsigned>(blocks_for(items, kWarps)), kThreads,
                                       0, s>>>(GroupMap<Index>::make(*l), *p, size, chunks, items,
                                               x, dy, dx, workspace);
            return static_cast<int>(cudaGetLastError());
        });
    });
    if (rc != 0) {
        return rc;
    }
    // A warp per group, or a block per group when its partials outnumber a warp (per-tensor).
    return chunks > kWarp
               ? launch_reduce_groups<kThreads>(groups, chunks, workspace, dscale, dzero_point, s)
               : launch_reduce_groups<kWarp>(groups, chunks, workspace, dscale, dzero_point, s);
}

extern "C" int qsim_cuda_cast_f16_f32(const float * x, float * y, int64_t n, void * stream) {
    return n == 0 ? 0 : with_index(n, [&](auto index) {
        return launch_map<decltype(index)>(n, CastFn<true>{}, x, nullptr, y,
                                           static_cast<cudaStream_t>(stream));
    });
}

extern "C" int qsim_cuda_cast_bf16_f32(const float * x, float * y, int64_t n, void * stream) {
    return n == 0 ? 0 : with_index(n, [&](auto index) {
        return launch_map<decltype(index)>(n, CastFn<false>{}, x, nullptr, y,
                                           static_cast<cudaStream_t>(stream));
    });
}
