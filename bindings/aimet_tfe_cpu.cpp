// CPU implementations of the AIMET tf_enhanced ops (schemas in library.cpp, fakes in
// wrappers/_stats_ops.py): check arguments, then call the C kernels of qsim/aimet_tfe.h on
// torch's thread pool: row by row (each row writes only its own outputs), or, for tfe_first /
// tfe_merge on fewer rows than threads (an activation's one long row), each row counted in chunks
// whose integer slot counts are summed. Results never depend on the thread count.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "aimet_tfe_update.h"

extern "C" {
#include "qsim/aimet_tfe.h"
}

namespace qsim {
namespace {

// `t` as a contiguous float32 CPU tensor of `dim` dimensions, else a ValueError naming it.
at::Tensor f32_cpu(const char * op, const char * name, const at::Tensor & t, int64_t dim) {
    TORCH_CHECK_VALUE(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.dim() == dim, op,
                      ": ", name, " must be a ", dim, "-D float32 CPU tensor, got ",
                      t.scalar_type(), " of shape ", t.sizes(), " on ", t.device());
    return t.contiguous();
}

// Rows per task so that a task holds about 64K values (or one row).
int64_t grain_rows(int64_t row_len) {
    return std::max<int64_t>(1, (int64_t{ 1 } << 16) / std::max<int64_t>(row_len, 1));
}

// tfe_histogram(x [R, n], lo [R], hi [R]) -> counts [R, 512]: torch.histc of each row over its
// own [lo, hi], values beyond the range in the end bins.
at::Tensor tfe_histogram_cpu(const at::Tensor & x_, const at::Tensor & lo_, const at::Tensor & hi_) {
    const char *     op = "tfe_histogram";
    const at::Tensor x = f32_cpu(op, "x", x_, 2), lo = f32_cpu(op, "lo", lo_, 1),
                     hi = f32_cpu(op, "hi", hi_, 1);
    const int64_t rows = x.size(0), n = x.size(1);
    TORCH_CHECK_VALUE(lo.size(0) == rows && hi.size(0) == rows, op, ": lo and hi need one value "
                      "per row of x (", rows, "), got ", lo.size(0), " and ", hi.size(0));
    const float * l = lo.data_ptr<float>(), * h = hi.data_ptr<float>(), * xp = x.data_ptr<float>();
    for (int64_t r = 0; r < rows; r++) {
        TORCH_CHECK_VALUE(std::isfinite(l[r]) && std::isfinite(h[r]) && l[r] < h[r], op, ": row ",
                          r, " needs a finite range with lo < hi, got [", l[r], ", ", h[r], "]");
    }
    at::Tensor out = at::empty({ rows, QSIM_TFE_BINS }, x.options());
    float *    c   = out.data_ptr<float>();
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; r++) {
            qsim_tfe_histogram(static_cast<size_t>(n), xp + r * n, l[r], h[r], c + r * QSIM_TFE_BINS);
        }
    });
    return out;
}

// A buffer the op writes in place: float32, contiguous, on the CPU, of shape `shape`.
void check_state(const char * op, const char * name, const at::Tensor & t, at::IntArrayRef shape) {
    TORCH_CHECK_VALUE(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() &&
                          t.sizes() == shape,
                      op, ": ", name, " must be a contiguous float32 CPU tensor of shape ", shape,
                      ", got ", t.scalar_type(), " of shape ", t.sizes(), " on ", t.device());
}

// Values per chunk of a row counted over threads, and the row length from which rows are
// split (when there are fewer rows than threads): a chunk costs ~20 us, its slots ~4 KiB.
constexpr int64_t kChunk = int64_t{ 1 } << 15, kSplitFrom = int64_t{ 1 } << 16;

// The rows of one tfe_first / tfe_merge call and their histogram states.
struct TfeBatch {
    bool          first;  // qsim_tfe_first (writes limits), else qsim_tfe_merge
    int64_t       n;      // values per row
    const float * x, * lo, * hi;
    float *       counts, * edges, * ranges, * limits;

    qsim_tfe_hist state(int64_t i) const {
        return { counts + i * QSIM_TFE_BINS, edges + i * (QSIM_TFE_BINS + 1), ranges + 2 * i, limits + 2 * i };
    }
    // Row i whole (qsim_tfe_first / qsim_tfe_merge); true when the kernel took it.
    bool update(int64_t i) const {
        const qsim_tfe_hist s = state(i);
        const size_t        len = static_cast<size_t>(n);
        return (first ? qsim_tfe_first(&s, limits + 2 * i, len, x + i * n, lo[i], hi[i])
                      : qsim_tfe_merge(&s, len, x + i * n, lo[i], hi[i])) == QSIM_SUCCESS;
    }
    // Step 1 of the header's three: row i's binning range into bin[2]; true when not refused.
    bool range(int64_t i, float * bin) const {
        const qsim_tfe_hist s = state(i);
        return (first ? qsim_tfe_first_range(lo[i], hi[i], bin)
                      : qsim_tfe_merge_range(&s, lo[i], hi[i], bin)) == QSIM_SUCCESS;
    }
    // Step 3: row i's state from its summed slots; true when the kernel took it.
    bool apply(int64_t i, const int64_t * slots) const {
        const qsim_tfe_hist s = state(i);
        return (first ? qsim_tfe_first_counted(&s, limits + 2 * i, lo[i], hi[i], slots)
                      : qsim_tfe_merge_counted(&s, lo[i], hi[i], slots)) == QSIM_SUCCESS;
    }
};

// Every row of b in chunks of kChunk values, all (row, chunk) pairs on torch's thread pool, each
// chunk into its own slots; then each row's slots summed (exact integers: the same sums for any
// split) and applied. ok[i]: whether the kernels took row i.
void update_chunked(const TfeBatch & b, int64_t rows, bool * ok) {
    const int64_t        chunks = (b.n + kChunk - 1) / kChunk;
    std::vector<float>   bins(static_cast<size_t>(2 * rows));
    std::vector<int64_t> slots(static_cast<size_t>(rows * chunks * QSIM_TFE_SLOTS), 0);
    for (int64_t i = 0; i < rows; i++) {
        ok[i] = b.range(i, &bins[2 * i]);
    }
    at::parallel_for(0, rows * chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin; t < end; t++) {
            const int64_t i = t / chunks, from = t % chunks * kChunk;
            if (ok[i]) {
                qsim_tfe_count(static_cast<size_t>(std::min(kChunk, b.n - from)), b.x + i * b.n + from,
                               bins[2 * i], bins[2 * i + 1], &slots[t * QSIM_TFE_SLOTS]);
            }
        }
    });
    for (int64_t i = 0; i < rows; i++) {
        int64_t * sum = &slots[i * chunks * QSIM_TFE_SLOTS];
        for (int64_t c = 1; c < chunks; c++) {
            for (int s = 0; s < QSIM_TFE_SLOTS; s++) {
                sum[s] += sum[c * QSIM_TFE_SLOTS + s];
            }
        }
        ok[i] = ok[i] && b.apply(i, sum);
    }
}

// tfe_first(x [R, n], lo [R], hi [R], counts [R, 512]!, edges [R, 513]!, ranges [R, 2]!,
// limits [R, 2]!) -> done [R] bool: AIMET's first batch of each row (qsim_tfe_first).
at::Tensor tfe_first_cpu(const at::Tensor & x, const at::Tensor & lo, const at::Tensor & hi,
                         at::Tensor & counts, at::Tensor & edges, at::Tensor & ranges, at::Tensor & limits) {
    return tfe_update("tfe_first", true, x, lo, hi, counts, edges, ranges, limits);
}

// tfe_merge(x, lo, hi, counts!, edges!, ranges!, limits) -> done: a later batch merged into each
// row's histogram (qsim_tfe_merge); limits are read only.
at::Tensor tfe_merge_cpu(const at::Tensor & x, const at::Tensor & lo, const at::Tensor & hi,
                         at::Tensor & counts, at::Tensor & edges, at::Tensor & ranges,
                         const at::Tensor & limits) {
    at::Tensor lim = limits;  // qsim_tfe_merge only reads it
    return tfe_update("tfe_merge", false, x, lo, hi, counts, edges, ranges, lim);
}

// tfe_search(counts [R, 512], edges [R, 513], ranges [R, 2], steps, symmetric, offsets [K], lanes)
// -> (min [R], max [R]) of each row's best candidate.
std::tuple<at::Tensor, at::Tensor> tfe_search_cpu(const at::Tensor & counts_, const at::Tensor & edges_,
                                                  const at::Tensor & ranges_, int64_t steps,
                                                  bool symmetric, const at::Tensor & offsets_,
                                                  int64_t lanes) {
    const char *     op = "tfe_search";
    const at::Tensor counts = f32_cpu(op, "counts", counts_, 2), edges = f32_cpu(op, "edges", edges_, 2),
                     ranges = f32_cpu(op, "ranges", ranges_, 2), offsets = f32_cpu(op, "offsets", offsets_, 1);
    const int64_t rows = counts.size(0);
    TORCH_CHECK_VALUE(counts.size(1) == QSIM_TFE_BINS && edges.sizes() == at::IntArrayRef({ rows, QSIM_TFE_BINS + 1 }) &&
                          ranges.sizes() == at::IntArrayRef({ rows, 2 }),
                      op, ": counts, edges and ranges must have shapes [R, 512], [R, 513], [R, 2], got ",
                      counts.sizes(), ", ", edges.sizes(), ", ", ranges.sizes());
    TORCH_CHECK_VALUE(steps >= 1 && steps <= (int64_t{ 1 } << 31) - 1, op, ": steps must be from 1 to 2^31 - 1, got ", steps);
    TORCH_CHECK_VALUE(lanes == 8 || lanes == 16, op, ": lanes must be 8 or 16, got ", lanes);
    TORCH_CHECK_VALUE(symmetric || (offsets.numel() >= 1 && offsets.numel() <= QSIM_TFE_MAX_OFFSETS), op,
                      ": an asymmetric search needs 1 to ", QSIM_TFE_MAX_OFFSETS, " offsets, got ", offsets.numel());
    const qsim_tfe_params p = { static_cast<int32_t>(steps), symmetric ? 1 : 0, static_cast<int>(lanes),
                                static_cast<int32_t>(offsets.numel()), offsets.data_ptr<float>() };
    at::Tensor lo = at::empty({ rows }, counts.options()), hi = at::empty({ rows }, counts.options());
    const float * c = counts.data_ptr<float>(), * e = edges.data_ptr<float>(), * r = ranges.data_ptr<float>();
    float * l = lo.data_ptr<float>(), * h = hi.data_ptr<float>();
    at::parallel_for(0, rows, 8, [&](int64_t b, int64_t end) {
        for (int64_t i = b; i < end; i++) {
            qsim_tfe_search(&p, c + i * QSIM_TFE_BINS, e + i * (QSIM_TFE_BINS + 1), r[2 * i], r[2 * i + 1],
                            l + i, h + i);
        }
    });
    return { lo, hi };
}

}  // namespace

at::Tensor tfe_update(const char * op, bool first, const at::Tensor & x_, const at::Tensor & lo_,
                      const at::Tensor & hi_, at::Tensor & counts, at::Tensor & edges,
                      at::Tensor & ranges, at::Tensor & limits) {
    const at::Tensor x = f32_cpu(op, "x", x_, 2), lo = f32_cpu(op, "lo", lo_, 1), hi = f32_cpu(op, "hi", hi_, 1);
    const int64_t rows = x.size(0), n = x.size(1);
    check_state(op, "counts", counts, { rows, QSIM_TFE_BINS });
    check_state(op, "edges", edges, { rows, QSIM_TFE_BINS + 1 });
    check_state(op, "ranges", ranges, { rows, 2 });
    check_state(op, "limits", limits, { rows, 2 });
    TORCH_CHECK_VALUE(lo.size(0) == rows && hi.size(0) == rows, op, ": lo and hi need one value per "
                      "row of x (", rows, "), got ", lo.size(0), " and ", hi.size(0));
    at::Tensor     done = at::empty({ rows }, x.options().dtype(at::kBool));
    bool *         ok   = done.data_ptr<bool>();
    const TfeBatch b    = { first, n, x.data_ptr<float>(), lo.data_ptr<float>(), hi.data_ptr<float>(),
                            counts.data_ptr<float>(), edges.data_ptr<float>(), ranges.data_ptr<float>(),
                            limits.data_ptr<float>() };
    if (rows < at::get_num_threads() && n >= kSplitFrom) {
        update_chunked(b, rows, ok);
        return done;
    }
    at::parallel_for(0, rows, grain_rows(n), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; i++) {
            ok[i] = b.update(i);
        }
    });
    return done;
}

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    m.impl("tfe_histogram", &tfe_histogram_cpu);
    m.impl("tfe_search", &tfe_search_cpu);
    m.impl("tfe_merge", &tfe_merge_cpu);
    m.impl("tfe_first", &tfe_first_cpu);
}

}  // namespace qsim
