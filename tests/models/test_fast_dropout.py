"""FastDropout: nn.Dropout's distribution and expectation, torch's seeding, gradients, and where it is used."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deltamix.models.fast_dropout import FastDropout, fast_dropout, use_fast_dropout, use_torch_dropout
from deltamix.models.transformer import TransformerSeq2Seq, TransformerSeq2SeqConfig


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_drops_a_fraction_p_and_scales_the_rest_to_keep_the_expectation(p):
    torch.manual_seed(0)
    x = torch.ones(400_000)
    out = fast_dropout(x, p)
    threshold = round(p * 65536)
    dropped = float((out == 0).double().mean())
    sd = math.sqrt(p * (1 - p) / x.numel())
    assert abs(dropped - threshold / 65536) < 5 * sd  # and t / 65536 is within 8e-6 of p
    kept = out[out != 0]
    assert torch.equal(kept, torch.full_like(kept, 65536 / (65536 - threshold)))
    assert abs(float(out.double().mean()) - 1.0) < 5 * math.sqrt(p / (1 - p) / x.numel())


def test_masks_of_neighbouring_entries_are_independent():
    torch.manual_seed(1)
    kept = fast_dropout(torch.ones(200_000), 0.5) != 0
    both = float((kept[:-1] & kept[1:]).double().mean())  # 1/4 if neighbours are independent
    assert abs(both - 0.25) < 0.005


def test_torch_manual_seed_fixes_the_mask_and_the_stream_moves_on():
    x = torch.randn(3, 50)
    torch.manual_seed(5)
    first, second = fast_dropout(x, 0.3), fast_dropout(x, 0.3)
    torch.manual_seed(5)
    assert torch.equal(fast_dropout(x, 0.3), first)
    assert not torch.equal(first, second)


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(2)
    x = torch.randn(8, 16, requires_grad=True)
    out = fast_dropout(x, 0.4)
    out.backward(torch.ones_like(out))
    scale = 65536 / (65536 - round(0.4 * 65536))
    assert torch.equal(x.grad, (out != 0).float() * scale)


def test_identity_in_eval_mode_and_at_p_zero_and_works_in_bf16_and_in_place():
    x = torch.randn(4, 10)
    layer = FastDropout(0.5)
    assert layer.eval()(x) is x
    assert FastDropout(0.0).train()(x) is x
    torch.manual_seed(3)
    low = FastDropout(0.5).train()(x.bfloat16())
    assert low.dtype == torch.bfloat16 and bool((low == 0).any())
    y = x.clone()
    torch.manual_seed(3)
    out = FastDropout(0.5, inplace=True).train()(y)
    assert out is y and bool((y == 0).any())


def test_use_fast_dropout_replaces_every_plain_dropout_module_and_the_transformer_uses_it():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2), nn.Sequential(nn.Dropout(0.7, inplace=True)))
    assert use_fast_dropout(model) == 2
    assert [(m.p, m.inplace) for m in model.modules() if isinstance(m, FastDropout)] == [
        (0.2, False),
        (0.7, True),
    ]
    assert use_fast_dropout(model) == 0  # FastDropout is left alone
    config = TransformerSeq2SeqConfig(
        vocab_size=20, d_model=16, num_heads=2, feedforward_dim=32, num_encoder_layers=1, num_decoder_layers=1
    )
    transformer = TransformerSeq2Seq(config)
    assert not any(type(m) is nn.Dropout for m in transformer.modules())
    assert sum(isinstance(m, FastDropout) for m in transformer.modules()) == 1 + 3 + 4  # embeddings, layers
    assert use_torch_dropout(transformer) == 8  # and back: torch's masks, same p
    assert [type(m) for m in transformer.modules() if isinstance(m, nn.Dropout)] == [nn.Dropout] * 8
