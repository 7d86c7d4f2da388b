"""Build torchqsim: the C kernels as a C11 static library, the torch op library (`torchqsim._C`),
the pybind11 module (`torchqsim._io`) and the ops' direct eager entries (`torchqsim._eager`).

Build with `pip install --no-build-isolation -e .` (torch==2.13.0 must already be installed).
When the installed torch has CUDA and a CUDA toolkit is found (torch's CUDA_HOME), `torchqsim._C`
is a CUDAExtension that also holds the CUDA kernels (kernels/cuda/*.cu) and their op
registrations (bindings/*_cuda.cpp); otherwise those are left out and the build is CPU only.
Environment toggles:
    DEBUG=1      compile with -O0 -g
    MAX_JOBS=N   parallel compile jobs (ninja)
"""

import glob
import json
import os
import platform

import pybind11
import torch
from setuptools import Extension, find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

# kernels/build.json is the one description of the C kernel libraries (CMakeLists.txt reads it
# too): their sources, the optimization, the warnings (errors in every build, the wheel included)
# and the ISA flags.
with open(os.path.join("kernels", "build.json"), encoding="utf-8") as f:
    BUILD = json.load(f)
DEBUG = os.environ.get("DEBUG") == "1"
OPT = ["-O0", "-g"] if DEBUG else BUILD["optimize"]
KERNEL_INCLUDE = BUILD["include_dirs"][0]
C_FLAGS = [f"-std={BUILD['c_standard']}", "-fPIC", *BUILD["warnings"], *OPT]
IS_X86 = platform.machine().lower() in ("x86_64", "amd64")


def _sources(patterns):
    return sorted(p for pattern in patterns for p in glob.glob(pattern))


# build_clib compiles the kernels with the C compiler (BuildExtension would compile .c as C++).
# It rebuilds a library only when a source is newer than its object: obj_deps makes every kernel
# header a dependency of every source, so that an incremental build sees header changes.
KERNEL_HEADERS = sorted(glob.glob("kernels/**/*.h", recursive=True) +
                        glob.glob("kernels/**/*.inc", recursive=True))
KERNEL_LIBS = [
    (lib["name"], {"sources": _sources(lib["sources"]), "include_dirs": BUILD["include_dirs"],
                   "cflags": C_FLAGS + lib["flags"], "obj_deps": {"": KERNEL_HEADERS}})
    for lib in BUILD["libraries"]
    if (lib.get("isa") is None or IS_X86) and _sources(lib["sources"])
]
KERNEL_LIB_NAMES = [name for name, _ in reversed(KERNEL_LIBS)]

# The op library: CPU sources always; the CUDA sources only with a CUDA torch and toolkit.
WITH_CUDA = torch.version.cuda is not None and CUDA_HOME is not None and os.path.isdir(CUDA_HOME)
CUDA_SOURCES = _sources(BUILD["cuda_sources"]) + sorted(glob.glob("bindings/*_cuda.cpp"))
OP_SOURCES = sorted(p for p in glob.glob("bindings/*.cpp") if p not in CUDA_SOURCES and
                    not os.path.basename(p).startswith(("io_", "eager_")))
OpExtension = CUDAExtension if WITH_CUDA else CppExtension
# nvcc: no fast math (the kernels need IEEE division and rounding); arch flags come from torch
# (TORCH_CUDA_ARCH_LIST, else the visible GPUs).
# -fopenmp: at::parallel_for uses OpenMP in the torch wheel; without it the ops run on one thread.
OP_COMPILE_ARGS = {"cxx": [*OPT, "-fopenmp"], "nvcc": OPT} if WITH_CUDA else {"cxx": [*OPT, "-fopenmp"]}


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
    packages=["torchqsim", *(f"torchqsim.{p}" for p in find_packages("wrappers"))],
    package_dir={"torchqsim": "wrappers"},
    data_files=[("share/torchqsim/configs", sorted(glob.glob("configs/*.json")))],  # config presets
    libraries=KERNEL_LIBS,
    ext_modules=[
        OpExtension(
            "torchqsim._C",
            OP_SOURCES + (CUDA_SOURCES if WITH_CUDA else []),
            include_dirs=[os.path.abspath(d) for d in BUILD["include_dirs"]],
            libraries=list(KERNEL_LIB_NAMES),
            extra_compile_args=OP_COMPILE_ARGS,
            extra_link_args=["-fopenmp"],
            py_limited_api=True,
        ),
        Extension(
            "torchqsim._io",
            sorted(glob.glob("bindings/io_*.cpp")),
            include_dirs=[os.path.abspath(KERNEL_INCLUDE), pybind11.get_include()],
            libraries=[*KERNEL_LIB_NAMES, "cjson"],
            extra_compile_args=[*OPT, "-std=c++17", "-fvisibility=hidden"],
            language="c++",
        ),
        # Direct entries to the ops for plain eager calls (pybind11 with torch: not limited API).
        CppExtension("torchqsim._eager", ["bindings/eager_module.cpp"],
                     extra_compile_args=[*OPT, "-fvisibility=hidden"]),
    ],
    cmdclass={"build_ext": BuildExtWithKernels},
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
