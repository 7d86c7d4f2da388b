"""Build torchqsim: the C kernels as a C11 static library, the torch op library (`torchqsim._C`)
and the pybind11 module (`torchqsim._io`).

Build with `pip install --no-build-isolation -e .` (torch==2.13.0 must already be installed).
Environment toggles:
    DEBUG=1      compile with -O0 -g
    MAX_JOBS=N   parallel compile jobs (ninja)
"""

import glob
import os

import pybind11
from setuptools import Extension, setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

DEBUG = os.environ.get("DEBUG") == "1"
OPT = ["-O0", "-g"] if DEBUG else ["-O3"]
C_FLAGS = ["-std=c11", "-fPIC", "-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes", *OPT]
KERNEL_INCLUDE = os.path.join("kernels", "include")

# The kernels are C: build_clib compiles them with the C compiler and these flags (BuildExtension
# would compile .c files as C++).
# ISA variants (kernels/x86/*__<isa>.c) get their ISA flags and nothing else does, so the build
# runs on any x86-64; the variant is chosen at run time (kernels/qdq_variants.inc).
ISA_FLAGS = {
    "avx2": ["-mavx2", "-mfma", "-mf16c"],
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mf16c"],
}
KERNEL_LIBS = [
    ("qsim_kernels", {"sources": sorted(glob.glob("kernels/*.c")),
                      "include_dirs": [KERNEL_INCLUDE], "cflags": C_FLAGS}),
    *[(f"qsim_kernels_{isa}", {"sources": sorted(glob.glob(f"kernels/x86/*__{isa}.c")),
                               "include_dirs": [KERNEL_INCLUDE, "kernels"],
                               "cflags": C_FLAGS + flags})
      for isa, flags in ISA_FLAGS.items() if glob.glob(f"kernels/x86/*__{isa}.c")],
]
KERNEL_LIB_NAMES = [name for name, _ in reversed(KERNEL_LIBS)]


class BuildExtWithKernels(BuildExtension):
    """build_ext that first builds the C kernel libraries (editable installs skip build_clib)."""

    def run(self):
        self.run_command("build_clib")
        self.library_dirs.append(self.get_finalized_command("build_clib").build_clib)
        super().run()


setup(
    name="torchqsim",
    version="0.1.0",
    description="Quantization simulation for PyTorch with C kernels (AIMET QuantSim compatible)",
    python_requires=">=3.11",
    install_requires=["torch==2.13.0", "numpy"],
    packages=["torchqsim"],
    package_dir={"torchqsim": "wrappers"},
    libraries=KERNEL_LIBS,
    ext_modules=[
        CppExtension(
            "torchqsim._C",
            sorted(p for p in glob.glob("bindings/*.cpp") if not p.endswith("io_module.cpp")),
            include_dirs=[os.path.abspath(KERNEL_INCLUDE)],
            libraries=list(KERNEL_LIB_NAMES),
            extra_compile_args={"cxx": OPT},
            py_limited_api=True,
        ),
        Extension(
            "torchqsim._io",
            ["bindings/io_module.cpp"],
            include_dirs=[os.path.abspath(KERNEL_INCLUDE), pybind11.get_include()],
            libraries=[*KERNEL_LIB_NAMES, "cjson"],
            extra_compile_args=[*OPT, "-std=c++17", "-fvisibility=hidden"],
            language="c++",
        ),
    ],
    cmdclass={"build_ext": BuildExtWithKernels},
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
