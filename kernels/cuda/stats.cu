// CUDA kernels of the calibration statistics: the launchers of qsim/stats_cuda.h. Each element is
// skipped or binned by the C kernels' own qsim_nonfinite and qsim_bin_index (stats_common.h,
// compiled for the device too), so the results equal the CPU's bit for bit.
//
// The work is cut into items: one channel's elements [begin, begin + slice) in the channel's
// order (a per-tensor view is one channel). One block takes an item at a time; its threads fold
// min/max as ordered integer keys (order_key), count non-finite values, and count bins in shared
// memory when the histogram fits there (else straight into global memory); then the block's
// results go to the channel's entries with integer atomics. Min and max are first turned into
// keys in place and back at the end, with + 0 so that a zero result is +0.0 as on the CPU.
#include <cuda_runtime.h>

#include <limits>

#include "stats/stats_common.h"
#include "qsim/stats_cuda.h"

namespace qsim_cuda {
namespace {

constexpr int     kThreads     = 256;      // threads per block
constexpr int     kWarp        = 32;
constexpr int     kWarps       = kThreads / kWarp;
constexpr int64_t kMinSlice    = 2048;     // elements per item, at least (when the channel has them)
constexpr int64_t kMaxSlice    = 1 << 30;  // elements per item, at most (block counters are 32-bit)
constexpr int64_t kTargetItems = 2048;     // items to aim for: a few waves of blocks
constexpr int64_t kSharedBins  = 8192;     // histograms up to this many bins count in shared memory
constexpr int64_t kMaxBlocks   = std::numeric_limits<int32_t>::max();
constexpr int32_t kKeyAbove    = std::numeric_limits<int32_t>::max();  // above every key
constexpr int32_t kKeyBelow    = std::numeric_limits<int32_t>::min();  // below every key

// A float as an int32 that orders like the float (-0 just below +0): the bits for v >= +0, the
// magnitude bits flipped for negative v. Its own inverse.
__device__ __forceinline__ int32_t order_key(int32_t bits) {
    return bits >= 0 ? bits : bits ^ 0x7fffffff;
}

// The element `j` of channel `c` (j in the channel's order, as qsim_minmax_channels_f32 visits
// them). Rows: outer == 1, so each channel is one contiguous run.
template <bool Rows>
__device__ __forceinline__ int64_t channel_element(const qsim_channel_view & v, int64_t m,
                                                   int64_t c, int64_t j) {
    if (Rows) {
        return c * m + j;
    }
    const int64_t o = j / v.inner;
    return (o * v.channels + c) * v.inner + (j - o * v.inner);
}

// Folds every thread's min/max keys and non-finite count over the block (warp shuffles, then
// thread 0 over the warps' results in the shared `warp_*` arrays) into the channel's entries with
// integer atomics. Called by all kThreads threads of the block.
__device__ __forceinline__ void block_fold(int32_t lo, int32_t hi, unsigned int bad,
                                           int32_t * warp_lo, int32_t * warp_hi,
                                           unsigned int * warp_bad, int32_t * min_key,
                                           int32_t * max_key, unsigned long long * nonfinite) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp, warp = threadIdx.x / kWarp;
#pragma unroll
    for (int off = kWarp / 2; off > 0; off /= 2) {
        const int32_t l = __shfl_xor_sync(0xffffffffu, lo, off);
        const int32_t h = __shfl_xor_sync(0xffffffffu, hi, off);
        lo = l < lo ? l : lo;
        hi = h > hi ? h : hi;
        bad += __shfl_xor_sync(0xffffffffu, bad, off);
    }
    if (lane == 0) {
        warp_lo[warp]  = lo;
        warp_hi[warp]  = hi;
        warp_bad[warp] = bad;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < kWarps; w++) {
            lo = warp_lo[w] < lo ? warp_lo[w] : lo;
            hi = warp_hi[w] > hi ? warp_hi[w] : hi;
            bad += warp_bad[w];
        }
        atomicMin(min_key, lo);
        atomicMax(max_key, hi);
        if (bad != 0) {
            atomicAdd(nonfinite, static_cast<unsigned long long>(bad));
        }
    }
}

// Min/max keys, non-finite counts and (Hist) histogram counts of `items` items, `slices` per
// channel of m elements. SharedBins: counts gathered per block in `nbins` shared counters.
template <bool Hist, bool SharedBins, bool Rows>
__global__ void __launch_bounds__(kThreads)
stats_kernel(qsim_channel_view v, int64_t m, int64_t slice, int64_t slices, int64_t items,
             const float * x, const qsim_bins * bins, int64_t nbins,
             unsigned long long * counts, int32_t * min_keys, int32_t * max_keys,
             unsigned long long * nonfinite) {
    extern __shared__ unsigned int local[];
    __shared__ int32_t      warp_lo[kWarps], warp_hi[kWarps];
    __shared__ unsigned int warp_bad[kWarps];
    for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
        const int64_t c     = item / slices;
        const int64_t begin = (item - c * slices) * slice;
        const int64_t end   = begin + slice < m ? begin + slice : m;
        qsim_bins     b     = { 0.0f, 0.0f, 0 };
        if (Hist) {
            b = bins[c];
        }
        const bool binned = Hist && b.count > 0;  // the same for the whole block
        if (SharedBins && binned) {
            for (int64_t i = threadIdx.x; i < nbins; i += kThreads) {
                local[i] = 0;
            }
            __syncthreads();
        }
        int32_t      lo = kKeyAbove, hi = kKeyBelow;
        unsigned int bad = 0;
        for (int64_t j = begin + threadIdx.x; j < end; j += kThreads) {
            const float value = x[channel_element<Rows>(v, m, c, j)];
            if (qsim_nonfinite(value)) {
                bad++;
                continue;
            }
            const int32_t key = order_key(__float_as_int(value));
            lo = key < lo ? key : lo;
            hi = key > hi ? key : hi;
            if (binned) {
                const int32_t i = qsim_bin_index(value, b);
                if (SharedBins) {
                    atomicAdd(&local[i], 1u);
                } else {
                    atomicAdd(&counts[c * nbins + i], 1ull);
                }
            }
        }
        block_fold(lo, hi, bad, warp_lo, warp_hi, warp_bad, &min_keys[c], &max_keys[c],
                   &nonfinite[c]);
        if (SharedBins && binned) {
            for (int64_t i = threadIdx.x; i < nbins; i += kThreads) {
                if (local[i] != 0) {
                    atomicAdd(&counts[c * nbins + i], static_cast<unsigned long long>(local[i]));
                }
            }
        }
        __syncthreads();  // the shared arrays are free for the next item
    }
}

// ToKeys: min and max (n entries each) to order keys in place; else back to floats, + 0.
template <bool ToKeys>
__global__ void convert_keys(int64_t n, float * min, float * max) {
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * kThreads) {
        if (ToKeys) {
            min[i] = __int_as_float(order_key(__float_as_int(min[i])));
            max[i] = __int_as_float(order_key(__float_as_int(max[i])));
        } else {
            min[i] = __fadd_rn(__int_as_float(order_key(__float_as_int(min[i]))), 0.0f);
            max[i] = __fadd_rn(__int_as_float(order_key(__float_as_int(max[i]))), 0.0f);
        }
    }
}

int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

unsigned blocks_for(int64_t work) {
    return static_cast<unsigned>(work < kMaxBlocks ? work : kMaxBlocks);
}

template <bool ToKeys>
int launch_convert(int64_t n, float * min, float * max, cudaStream_t stream) {
    convert_keys<ToKeys><<<blocks_for(ceil_div(n, kThreads)), kThreads, 0, stream>>>(n, min, max);
    return static_cast<int>(cudaGetLastError());
}

template <bool Hist, bool SharedBins>
int launch_stats(const qsim_channel_view & v, const float * x, const qsim_bins * bins,
                 int64_t nbins, int64_t * counts, float * min, float * max, int64_t * nonfinite,
                 cudaStream_t stream) {
    const int64_t m = v.outer * v.inner;
    // Enough items for the GPU, each of kMinSlice to kMaxSlice elements where the channel allows.
    int64_t slices = ceil_div(kTargetItems, v.channels);
    slices         = slices < ceil_div(m, kMinSlice) ? slices : ceil_div(m, kMinSlice);
    slices         = slices > ceil_div(m, kMaxSlice) ? slices : ceil_div(m, kMaxSlice);
    const int64_t slice = ceil_div(m, slices), items = v.channels * slices;
    const size_t  shared = SharedBins ? static_cast<size_t>(nbins) * sizeof(unsigned int) : 0;
    auto * const  ucounts = reinterpret_cast<unsigned long long *>(counts);
    auto * const  lo = reinterpret_cast<int32_t *>(min);
    auto * const  hi = reinterpret_cast<int32_t *>(max);
    auto * const  bad = reinterpret_cast<unsigned long long *>(nonfinite);
    if (v.outer == 1) {
        stats_kernel<Hist, SharedBins, true><<<blocks_for(items), kThreads, shared, stream>>>(
            v, m, slice, slices, items, x, bins, nbins, ucounts, lo, hi, bad);
    } else {
        stats_kernel<Hist, SharedBins, false><<<blocks_for(items), kThreads, shared, stream>>>(
            v, m, slice, slices, items, x, bins, nbins, ucounts, lo, hi, bad);
    }
    return static_cast<int>(cudaGetLastError());
}

// Min/max to keys, the statistics kernel, keys back to min/max.
template <bool Hist>
int run_stats(const qsim_channel_view & v, const float * x, const qsim_bins * bins,
              int64_t nbins, int64_t * counts, float * min, float * max, int64_t * nonfinite,
              void * stream_ptr) {
    const cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    if (v.channels == 0 || v.outer * v.inner == 0) {
        return 0;  // nothing to fold
    }
    int rc = launch_convert<true>(v.channels, min, max, stream);
    if (rc == 0) {
        rc = nbins <= kSharedBins
                 ? launch_stats<Hist, Hist>(v, x, bins, nbins, counts, min, max, nonfinite, stream)
                 : launch_stats<Hist, false>(v, x, bins, nbins, counts, min, max, nonfinite,
                                             stream);
    }
    return rc != 0 ? rc : launch_convert<false>(v.channels, min, max, stream);
}

}  // namespace
}  // namespace qsim_cuda

extern "C" int qsim_cuda_minmax_f32(const qsim_channel_view * v, const float * x, float * min,
                                    float * max, int64_t * nonfinite, void * stream) {
    return qsim_cuda::run_stats<false>(*v, x, nullptr, 0, nullptr, min, max, nonfinite, stream);
}

extern "C" int qsim_cuda_histogram_f32(const qsim_channel_view * v, const float * x,
                                       const qsim_bins * bins, int64_t nbins, int64_t * counts,
                                       float * min, float * max, int64_t * nonfinite,
                                       void * stream) {
    return qsim_cuda::run_stats<true>(*v, x, bins, nbins, counts, min, max, nonfinite, stream);
}
