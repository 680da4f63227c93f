"""``call_layer``: plain layers computed functionally (same values and gradients), anything with
hooks or of another class called as a module."""
import pytest
import torch
from torch import nn

from omgseg.layers import call_layer


def _layers():
    torch.manual_seed(0)
    return [
        (nn.Linear(8, 5), torch.randn(2, 3, 8)),
        (nn.Linear(8, 5, bias=False), torch.randn(3, 8)),
        (nn.LayerNorm(8, eps=1e-3), torch.randn(2, 3, 8)),
        (nn.Embedding(4, 6), torch.tensor([[0, 3, 1]])),
        (nn.Embedding(4, 6, padding_idx=2), torch.tensor([2, 1])),
        (nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 4)), torch.randn(5, 8)),
    ]


@pytest.mark.parametrize("index", range(6))
def test_same_values_and_gradients_as_the_module_call(index):
    module, x = _layers()[index]
    if x.is_floating_point():
        x.requires_grad_(True)
    expected = module(x)
    (expected * torch.arange(expected.numel()).view_as(expected)).sum().backward()
    grads = [p.grad.clone() for p in module.parameters()]
    x_grad = x.grad.clone() if x.requires_grad else None
    module.zero_grad()
    if x.requires_grad:
        x.grad = None

    got = call_layer(module, x)
    assert torch.equal(got, expected)
    (got * torch.arange(got.numel()).view_as(got)).sum().backward()
    for p, g in zip(module.parameters(), grads):
        assert torch.equal(p.grad, g)
    if x_grad is not None:
        assert torch.equal(x.grad, x_grad)


def test_hooks_are_honoured():
    lin = nn.Linear(4, 4)
    seen = []
    lin.register_forward_pre_hook(lambda m, args: seen.append("pre"))
    handle = lin.register_forward_hook(lambda m, args, out: out * 0)
    out = call_layer(lin, torch.randn(2, 4))
    assert seen == ["pre"] and torch.equal(out, torch.zeros(2, 4))
    handle.remove()
    assert call_layer(lin, torch.ones(2, 4)).abs().sum() > 0

    # a hook on a member of a Sequential: the member is called as a module
    seq = nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 4))
    seq[1].register_forward_hook(lambda m, args, out: out + 100)
    assert (call_layer(seq, torch.randn(3, 4)) > 50).all()


def test_other_classes_are_called_as_modules():
    class Adapted(nn.Linear):  # e.g. a LoRA layer put in place of a Linear
        def forward(self, x):
            return super().forward(x) + 1.0

    layer = Adapted(4, 4)
    x = torch.randn(2, 4)
    assert torch.allclose(call_layer(layer, x), nn.functional.linear(x, layer.weight,
                                                                     layer.bias) + 1.0)
    assert torch.equal(call_layer(nn.ReLU(), torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 2.0]))


def test_decoder_hooks_still_fire():
    """A forward hook on a decoder head layer still sees (and may change) its output."""
    from omgseg.modeling.transformer_decoder import OMGMaskDecoder

    torch.manual_seed(0)
    dec = OMGMaskDecoder(in_channels=16, hidden_dim=16, num_queries=3, nheads=2,
                         dim_feedforward=32, dec_layers=2, pre_norm=False, mask_dim=16,
                         text_dim=8, logit_scale=10.0, attn_mask_threshold=0.5).eval()
    feats = [torch.randn(1, 16, s, s) for s in (2, 4, 8)]
    text = torch.randn(4, 1, 8)
    calls = []
    dec.mask_embed.layers[2].register_forward_hook(lambda m, a, out: calls.append(1))
    with torch.no_grad():
        dec(feats, torch.randn(1, 16, 16, 16), 1, text)
    assert len(calls) == 3  # before layer 1, after layer 1, after layer 2
