/* aimet_tfe__avx2.c: the tf_enhanced loops of analyzers/aimet_tfe_kernels.h compiled with the
 * AVX2 flags of kernels/build.json (the compiler vectorizes them; same bits as the reference). */
#include "analyzers/aimet_tfe_kernels.h"

QSIM_TFE_DEFINE_VARIANT(avx2)
