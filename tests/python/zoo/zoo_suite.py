"""The zoo's test bodies, shared by the per-family test files: each file calls
``define_tests(globals(), builders, compile_subset)`` to get the same five tests for its models.

Per model (min-max ranges, checks.calibrated_sim says why): the sim builds on the model as it
is; W16A16 relative error < 1e-3 against FP32; no parameter without a quantizer (and W8A8 SQNR
printed); ``{prefix}_qdq.onnx`` in onnxruntime equals ``sim.model`` bit for bit at W8A8,
per-tensor and per-channel, and ``{prefix}.encodings`` has an entry for every quantizer (as
``sim.load_encodings`` maps its names), each naming a tensor of ``{prefix}.onnx`` and loading
back onto the sim unchanged; one QAT backward gives
every weight and every learnable range a gradient (tests/python/zoo/checks.py says which zero
gradients autograd must give); ``torch.compile(sim.model)`` equals eager: every model through
dynamo and AOTAutograd (``backend="aot_eager"``), the models in ``compile_subset`` through
inductor too (its compiles take tens of seconds each on 2 cores, see tests/python/zoo/README.md).
"""

import functools

import pytest
import torch

import checks


def define_tests(namespace: dict, builders: dict, compile_subset=(), *, quant_scheme="tf",
                 check_entries: bool = True) -> None:
    """The zoo's tests for `builders` (name -> builder), in `namespace`; `compile_subset`: the
    models compiled with inductor (every model is compiled with ``backend="aot_eager"``);
    `quant_scheme`: the sims' ranges; `check_entries`: every enabled quantizer must get an entry of ``{prefix}.encodings`` (as
    ``sim.load_encodings`` maps them)."""
    names = sorted(builders)

    @functools.lru_cache(maxsize=None)
    def model(name):
        return builders[name]()

    @functools.lru_cache(maxsize=2)
    def w8a8(name, config):
        m, d = model(name)
        return checks.calibrated_sim(m, d, 8, quant_scheme, config_file=config)

    @pytest.mark.parametrize("name", names)
    def test_sim_builds_as_is_and_w16a16_matches_fp32(name):
        m, d = model(name)
        sim = checks.calibrated_sim(m, d, 16, quant_scheme)
        assert sim.unquantized_weights == [], f"{name}: weights left in FP32"
        assert checks.unquantized_parameters(sim.model) == []
        error = checks.relative_error(m, sim, d)
        sqnr = checks.sqnr_db(m, w8a8(name, "default"), d)
        print(f"\n{name}: W16A16 relative error {error:.2e}, W8A8 SQNR {sqnr:.1f} dB, "
              f"unquantized ops {dict(sim.graph.unquantized_ops)}")
        assert error < 1e-3, f"{name}: W16A16 relative error {error:.2e}"

    @pytest.mark.parametrize("config", ["default", "per_channel"])
    @pytest.mark.parametrize("name", names)
    def test_qdq_onnx_equals_sim_bit_for_bit_in_onnxruntime(name, config):
        m, d = model(name)
        sim = w8a8(name, config)
        expected = checks.outputs(sim.model, d)
        exported = checks.exported_qdq_outputs(sim, d)
        got = exported["got"]
        assert len(got) == len(expected), f"{name}: {len(got)} ONNX outputs, {len(expected)}"
        for i, (a, b) in enumerate(zip(got, expected)):
            fraction = checks.bit_equal_fraction(a, b)
            assert fraction == 1.0, f"{name} output {i}: {fraction:.1%} bit-equal"
        _assert_names(name, exported, len(expected), check_entries)

    @pytest.mark.parametrize("name", names)
    def test_qat_backward_gives_every_weight_and_range_a_gradient(name):
        m, d = model(name)
        assert checks.qat_step_leaves_without_gradient(m, d) == []

    @pytest.mark.parametrize("backend, name", [("aot_eager", n) for n in names] +
                             [("inductor", n) for n in sorted(compile_subset)])
    def test_torch_compile_equals_eager(name, backend):
        m, d = model(name)
        assert checks.compiled_matches_eager(w8a8(name, "default"), d, backend) == \
            [1.0] * len(checks.outputs(m, d))

    namespace.update({t.__name__: t for t in (
        test_sim_builds_as_is_and_w16a16_matches_fp32,
        test_qdq_onnx_equals_sim_bit_for_bit_in_onnxruntime,
        test_qat_backward_gives_every_weight_and_range_a_gradient,
        test_torch_compile_equals_eager)})


def _assert_names(name: str, exported: dict, outputs: int, check_entries: bool) -> None:
    """The `.encodings` of an export (checks.exported_qdq_outputs): every name is in the graph,
    every entry reaches a quantizer, the file loads back unchanged, and (`check_entries`) every
    enabled quantizer has its entry."""
    encodings = exported["encodings"]
    assert encodings["activation_encodings"] and encodings["param_encodings"]
    assert exported["not_in_graph"] == [], f"{name}: encodings name tensors not in the graph"
    assert exported["problems"] == [], f"{name}: entries no quantizer takes"
    assert exported["reloaded"] == [1.0] * outputs, f"{name}: reloaded encodings differ"
    if check_entries:
        assert exported["without_entry"] == [], f"{name}: quantizers without an entry"
