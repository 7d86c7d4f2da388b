"""prepare_model: functionals become modules, reused modules are duplicated, outputs unchanged.

Oracle: the original model itself (outputs must be torch.equal), and hand-written expectations
of which modules the prepared graph calls.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

import torchqsim.prepare.rule_table as rule_table
from torchqsim.nn import functional_modules as fm
from torchqsim.prepare import PrepareError, prepare_model

from prepare_models import Reused, SmallCNN, TransformerBlock


def _children(gm):
    return [(name, type(m)) for name, m in gm.named_children()]


def _assert_same(model, gm, *inputs):
    want, got = model(*inputs), gm(*inputs)
    assert torch.equal(got, want), (got - want).abs().max()


def test_cnn_residual_add_and_relu_become_modules_with_equal_output():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    gm = prepare_model(model)
    assert isinstance(gm, fx.GraphModule)
    called = [(n.target, type(gm.get_submodule(n.target)))
              for n in gm.graph.nodes if n.op == "call_module"]
    assert called == [("stem.0", nn.Conv2d), ("stem.1", nn.BatchNorm2d), ("stem.2", nn.ReLU),
                      ("block.conv1", nn.Conv2d), ("block.bn1", nn.BatchNorm2d),
                      ("module_relu", nn.ReLU), ("block.conv2", nn.Conv2d),
                      ("block.bn2", nn.BatchNorm2d), ("module_add", fm.Add), ("module_relu_1", nn.ReLU),
                      ("pool", nn.AdaptiveAvgPool2d), ("fc", nn.Linear)]
    assert not any(n.op in ("call_function", "call_method") and n.target is not torch.flatten
                   for n in gm.graph.nodes)
    # the user's modules are shared, not copied
    assert gm.block.conv1 is model.block.conv1 and gm.fc.weight is model.fc.weight
    _assert_same(model, gm, torch.randn(2, 3, 8, 8))


def test_transformer_block_functionals_become_modules_with_equal_output():
    torch.manual_seed(0)
    model = TransformerBlock().eval()
    gm = prepare_model(model)
    kinds = {name: type(m) for name, m in gm.named_children()}
    assert kinds["module_matmul"] is fm.MatMul and kinds["module_matmul_1"] is fm.MatMul
    assert kinds["module_truediv"] is fm.Divide and kinds["module_softmax"] is nn.Softmax
    assert kinds["module_add"] is fm.Add and kinds["module_add_1"] is fm.Add
    assert kinds["module_mul"] is fm.Multiply
    assert kinds["module_gelu"] is nn.GELU and gm.module_gelu.approximate == "tanh"
    assert gm.module_softmax.dim == -1
    # F.layer_norm on parameters -> nn.LayerNorm holding the very same parameters
    ln = gm.module_layer_norm
    assert type(ln) is nn.LayerNorm and ln.eps == 1e-6 and ln.normalized_shape == (16,)
    assert ln.weight is model.ln2_weight and ln.bias is model.ln2_bias
    # the scalar operands stay arguments of the call
    div = next(n for n in gm.graph.nodes if n.target == "module_truediv")
    mul = next(n for n in gm.graph.nodes if n.target == "module_mul")
    assert div.args[1] == math.sqrt(8) and mul.args[1] == 0.5
    assert not [n.name for n in gm.graph.nodes if n.op == "get_attr"]
    assert dict(gm.named_parameters())["module_layer_norm.weight"] is model.ln2_weight
    assert not hasattr(gm, "ln2_weight")
    _assert_same(model, gm, torch.randn(3, 5, 16))


def test_reused_module_is_duplicated_per_call_with_shared_parameters():
    torch.manual_seed(0)
    model = Reused()
    gm = prepare_model(model)
    called = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert called == ["fc", "act", "module_fc_1", "module_act_1"]  # AIMET's names
    assert gm.module_fc_1 is not gm.fc and gm.module_act_1 is not gm.act
    assert gm.module_fc_1.weight is model.fc.weight and gm.module_fc_1.bias is model.fc.bias
    x = torch.randn(3, 4)
    _assert_same(model, gm, x)
    # tied weights stay tied when training the prepared model
    gm(x).sum().backward()
    assert model.fc.weight.grad is not None and gm.module_fc_1.weight.grad is model.fc.weight.grad


def test_reused_module_buffers_are_shared():
    bn = nn.BatchNorm1d(4)
    model = nn.Sequential(bn, nn.ReLU(), bn)
    gm = prepare_model(model)
    dup = [m for n, m in gm.named_children() if isinstance(m, nn.BatchNorm1d) and m is not bn]
    assert len(dup) == 1 and dup[0].running_mean is bn.running_mean
    gm.train()
    gm(torch.randn(8, 4) * 3 + 1)
    assert int(bn.num_batches_tracked) == 2


def test_names_are_deterministic():
    names = [_children(prepare_model(TransformerBlock())) for _ in range(2)]
    assert [n for n, _ in names[0]] == [n for n, _ in names[1]]


def test_tensor_methods_and_reflected_operators():
    class M(nn.Module):
        def forward(self, x, y):
            a = x.add(y).mul(y).sub(y).div(2.0)
            b = 0.5 + x      # reflected operators keep their operand order
            c = 1.0 - y * 3.0 + 2 ** x
            d = x.softmax(-1).exp().sqrt().rsqrt()
            e = torch.cat((a, b), 1) + torch.bmm(x.unsqueeze(0), y.t().unsqueeze(0))[0].sum()
            f = x.mean(dim=-1, keepdim=True) ** 2 + x.sigmoid() + torch.tanh(y) + F.silu(x)
            f = f + x.mean()
            return a, b, c, d, e, f

    model = M()
    gm = prepare_model(model)
    types = {type(m) for m in gm.children()}
    assert {fm.Add, fm.Multiply, fm.Subtract, fm.Divide, fm.Concat, fm.Bmm, fm.Exp, fm.Sqrt,
            fm.Rsqrt, fm.Mean, fm.Pow, nn.Softmax, nn.Sigmoid, nn.Tanh, nn.SiLU} <= types
    x_node = next(iter(gm.graph.nodes))
    assert next(n for n in gm.graph.nodes if n.target == "module_add_1").args == (0.5, x_node)
    assert next(n for n in gm.graph.nodes if n.target == "module_pow_1").args == (2, x_node)
    assert next(n for n in gm.graph.nodes if n.target == "module_sub_1").args[0] == 1.0
    assert gm.module_cat.num_inputs == 2 and gm.module_cat.dim == 1
    x, y = torch.rand(4, 4) + 0.5, torch.rand(4, 4) + 0.5
    for got, want in zip(gm(x, y), model(x, y)):
        assert torch.equal(got, want)


def test_interpolate_and_scaled_dot_product_attention():
    class M(nn.Module):
        def forward(self, img, q, k, v, mask):
            up = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            b = F.scaled_dot_product_attention(q, k, v, mask, scale=0.25)
            return up, a, b

    gm = prepare_model(M())
    assert _children(gm) == [("module_interpolate", fm.Interpolate),
                             ("module_scaled_dot_product_attention", fm.ScaledDotProductAttention),
                             ("module_scaled_dot_product_attention_1",
                              fm.ScaledDotProductAttention)]
    assert gm.module_interpolate.mode == "bilinear" and gm.module_interpolate.scale_factor == 2
    sdpa = [n for n in gm.graph.nodes if n.op == "call_module"][1:]
    assert sdpa[0].kwargs == {"is_causal": True} and len(sdpa[1].args) == 4
    inputs = (torch.randn(1, 2, 3, 3), torch.randn(2, 5, 8), torch.randn(2, 5, 8),
              torch.randn(2, 5, 8), torch.randn(5, 5))
    for got, want in zip(gm(*inputs), M()(*inputs)):
        assert torch.equal(got, want)


def test_arithmetic_on_shapes_stays_python():
    class M(nn.Module):
        def forward(self, x):
            n = x.shape[0] * x.shape[1]
            return x.reshape(n, -1) / x.size(-1) ** 0.5

    gm = prepare_model(M())
    assert _children(gm) == [("module_truediv", fm.Divide)]
    x = torch.randn(2, 3, 4)
    _assert_same(M(), gm, x)


def test_calls_the_modules_cannot_express_stay_functions():
    class M(nn.Module):
        def forward(self, x):
            b = torch.add(x, x, alpha=2.0)
            d = torch.div(x, 3.0, rounding_mode="floor")
            return b + torch.cumsum(d, 0)

    gm = prepare_model(M())
    left = {n.name for n in gm.graph.nodes if n.op in ("call_function", "call_method")}
    assert {"add", "div", "cumsum"} <= left
    _assert_same(M(), gm, torch.randn(3, 4))


@pytest.mark.parametrize("x_dtype,dtype", [(torch.bfloat16, torch.float32),
                                           (torch.float32, torch.float64)], ids=str)
def test_softmax_with_a_dtype_becomes_a_cast_then_nn_softmax(x_dtype, dtype):
    class M(nn.Module):   # HF eager attention: fp32 probabilities in a bf16 model
        def forward(self, x):
            return F.softmax(x * 2, dim=-1, dtype=dtype).to(x.dtype)

    x = torch.randn(2, 3, 5).to(x_dtype)
    gm = prepare_model(M(), dummy_input=x)
    softmax = next(n for n in gm.graph.nodes if n.target == "module_softmax")
    cast = softmax.args[0]
    assert isinstance(gm.module_softmax, nn.Softmax) and gm.module_softmax.dim == -1
    assert cast.op == "call_method" and cast.target == "to" and cast.args[1] == dtype
    _assert_same(M(), gm, x)
    with torch.no_grad():
        assert gm.module_softmax(x.to(dtype)).dtype == dtype


def test_only_calls_whose_module_has_a_quantized_class_are_converted(monkeypatch):
    real = rule_table._quantized_class
    monkeypatch.setattr(rule_table, "_quantized_class",
                        lambda cls: None if cls is nn.GELU else real(cls))
    gm = prepare_model(TransformerBlock())
    assert "module_gelu" not in dict(gm.named_children())
    assert any(n.op == "call_function" and n.target is F.gelu for n in gm.graph.nodes)


def test_dropout_follows_train_eval_when_traced_with_self_training():
    class M(nn.Module):
        def forward(self, x):
            return F.dropout(x, p=0.5, training=self.training)

    model = M().eval()
    gm = prepare_model(model)
    assert _children(gm) == [("module_dropout", nn.Dropout)] and not gm.module_dropout.training
    x = torch.ones(1000)
    _assert_same(model, gm, x)
    gm.train()
    assert (gm(x) == 0).any()


def test_dropout_with_a_fixed_flag_stays_a_function():
    class M(nn.Module):
        def forward(self, x):
            return F.dropout(x, p=0.5, training=False)

    gm = prepare_model(M().train())
    assert _children(gm) == []


def test_layer_norm_without_parameters_and_linear_on_parameters():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 4))
            self.b = nn.Parameter(torch.randn(3))

        def forward(self, x):
            return F.linear(F.layer_norm(x, (4,)), self.w, self.b)

    model = M()
    gm = prepare_model(model)
    assert _children(gm) == [("module_layer_norm", nn.LayerNorm), ("module_linear", nn.Linear)]
    assert not gm.module_layer_norm.elementwise_affine
    assert gm.module_linear.weight is model.w and gm.module_linear.bias is model.b
    _assert_same(model, gm, torch.randn(2, 4))


def test_a_parameter_read_only_for_its_shape_gets_no_parameter_module():
    """CLIP's text embeddings check ``position_embedding.weight.shape[0]``: that read must not
    give the table a second weight quantizer (whose range would never get a gradient)."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(8, 4)
            self.w = nn.Parameter(torch.randn(4, 4))

        def forward(self, ids):
            if ids.shape[-1] > self.table.weight.shape[0]:
                raise ValueError("sequence too long")
            return self.table(ids) * self.w.size(0) + torch.mul(self.w.sum(), 2.0)

    model = M()
    ids = torch.tensor([[1, 2, 3]])
    gm = prepare_model(model, dummy_input=ids)
    wrapped = [p for m in gm.children() if isinstance(m, fm.Parameter) for p in m.parameters()]
    assert len(wrapped) == 1 and wrapped[0] is model.w  # table.weight's values never reach the output
    assert torch.equal(gm(ids), model(ids))


def test_functional_batch_norm_on_the_models_tensors_becomes_batch_norm_sharing_them():
    """timm's BatchNormAct2d: an nn.BatchNorm2d subclass whose forward calls F.batch_norm."""
    class BatchNormAct(nn.BatchNorm2d):
        def forward(self, x):
            return F.relu(F.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                       self.bias, self.training, self.momentum, self.eps))

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), BatchNormAct(4)

        def forward(self, x):
            return self.bn(self.conv(x))

    model = M().eval()
    model.bn.running_mean.uniform_(-1, 1)
    model.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 8, 8)
    gm = prepare_model(model, dummy_input=x)
    bns = [m for m in gm.modules() if type(m) is nn.BatchNorm2d]
    assert len(bns) == 1 and bns[0].weight is model.bn.weight
    assert bns[0].running_mean is model.bn.running_mean and bns[0].eps == model.bn.eps
    _assert_same(model, gm, x)
    gm.train(), model.train()  # batch statistics, and the running ones updated once, not twice
    before = model.bn.running_mean.clone()
    y = gm(x)
    after_prepared = model.bn.running_mean.clone()
    model.bn.running_mean.copy_(before)
    assert torch.equal(y, model(x)) and torch.equal(after_prepared, model.bn.running_mean)


def test_layer_norm_with_computed_weight_stays_a_function():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4))

        def forward(self, x):
            return F.layer_norm(x, (4,), self.w * 2)

    gm = prepare_model(M())
    assert any(n.target is F.layer_norm for n in gm.graph.nodes)


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow
            return x * 2
        return -x


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.gate = Gate()

    def forward(self, x):
        return self.gate(self.fc(x)) + 1.0


def test_control_flow_raises_prepare_error_naming_the_code_and_the_fix():
    with pytest.raises(PrepareError) as info:
        prepare_model(Gated())
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "module 'gate' (Gate)" in message
    assert "if x.sum() > 0:" in message and "test_prepare.py" in message
    assert "control flow" in message  # torch.fx's own error text
    assert "modules_to_exclude=[model.gate]" in message
    assert "module_classes_to_exclude=[Gate]" in message
    assert isinstance(info.value.__cause__, fx.proxy.TraceError)


@pytest.mark.parametrize("how", ["instance", "class"])
def test_excluded_module_is_a_leaf(how):
    model = Gated()
    kwargs = ({"modules_to_exclude": [model.gate]} if how == "instance"
              else {"module_classes_to_exclude": [Gate]})
    gm = prepare_model(model, **kwargs)
    assert [n.target for n in gm.graph.nodes if n.op == "call_module"] == ["fc", "gate", "module_add"]
    x = torch.randn(2, 4)
    _assert_same(model, gm, x)


def test_concrete_args_fix_an_optional_argument():
    class M(nn.Module):
        def forward(self, x, scale):
            if scale:
                x = x * scale
            return torch.relu(x)

    with pytest.raises(PrepareError, match="(?s)in the model's own forward.*concrete_args"):
        prepare_model(M())
    gm = prepare_model(M(), concrete_args={"scale": None})
    assert _children(gm) == [("module_relu", nn.ReLU)]
    x = torch.randn(3)
    assert torch.equal(gm(x, None), M()(x, None))


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        prepare_model(lambda x: x)
    with pytest.raises(TypeError, match=r"modules_to_exclude\[1\]"):
        prepare_model(Gated(), modules_to_exclude=[nn.ReLU(), "gate"])
    with pytest.raises(TypeError, match=r"module_classes_to_exclude\[0\]"):
        prepare_model(Gated(), module_classes_to_exclude=[Gate()])


def test_train_eval_flags_of_the_users_modules_are_untouched():
    model = SmallCNN().train()
    model.block.bn1.eval()
    gm = prepare_model(model)
    assert gm.training and not model.block.bn1.training and model.block.bn2.training
