"""U-TAE series segmenter: published size, masks for padded dates, day encoding, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from landforge.errors import InputError, OptionError
from landforge.models import build
from landforge.models.utae import UTAE, LTAE2d, PositionalEncoding, _masked_group_norm

torch.set_num_threads(1)

# a tiny U-TAE: 3 stages of 8/8/16 channels, 4 heads
TINY = {
    "encoder_widths": [8, 8, 16],
    "decoder_widths": [8, 8, 16],
    "out_channels": 8,
    "n_head": 4,
    "d_model": 16,
    "d_k": 4,
}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny(seed: int = 0, **kw) -> UTAE:
    torch.manual_seed(seed)
    return build("utae", **{"in_channels": 5, "classes": 3, **TINY, **kw}).eval()


def series(b: int = 2, t: int = 4, c: int = 5, h: int = 16, w: int = 16, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    days = torch.sort(torch.randint(0, 365, (b, t), generator=g), dim=1).values
    return torch.randn(b, t, c, h, w, generator=g), days


def test_published_pastis_configuration_has_the_papers_parameter_count():
    # Garnot & Landrieu 2021: 1.1 M parameters with 10 bands and 20 classes. The
    # reference code (utae-paps, UTAE(input_dim=10)) counts 1,087,260; ours lacks the
    # batch norm the reference puts on the output logits (2 x 20 parameters).
    model = UTAE(in_channels=10, classes=20)
    assert n_params(model) == 1_087_260 - 40
    assert abs(n_params(model) - 1.1e6) / 1.1e6 < 0.02
    # the L-TAE at 128 channels, d_model 256, 16 heads of d_k 4: the L-TAE paper's budget
    ltae = n_params(model.temporal)
    expected = (2 * 128) + (128 * 256 + 256) + (16 * 4) + (256 * 64 + 64)
    expected += (256 * 128 + 128) + (2 * 128) + (2 * 128)  # MLP linear + BN, out norm
    assert ltae == expected


@pytest.mark.parametrize(("h", "w"), [(16, 16), (30, 22), (9, 13)])
def test_logits_have_the_series_size_for_any_height_and_width(h, w):
    model = tiny()
    x, days = series(h=h, w=w)
    with torch.no_grad():
        out = model(x, days)
    assert out.shape == (2, 3, h, w)
    assert torch.isfinite(out).all()


def test_padded_dates_with_garbage_do_not_change_the_output():
    model = tiny()
    x, days = series(t=3)
    with torch.no_grad():
        ref = model(x, days)
    # insert two padded dates (garbage values, NaN, odd days) between the real ones
    garbage = torch.full((2, 1, 5, 16, 16), 1e6)
    nan = torch.full((2, 1, 5, 16, 16), float("nan"))
    padded = torch.cat([x[:, :1], garbage, x[:, 1:2], nan, x[:, 2:]], dim=1)
    pdays = torch.cat(
        [days[:, :1], days[:, :1] + 7, days[:, 1:2], days[:, 1:2] * 0, days[:, 2:]], 1
    )
    mask = torch.tensor([[True, False, True, False, True]] * 2)
    with torch.no_grad():
        out = model(padded, pdays, mask)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    # the same garbage unmasked does change it: the mask is what protects the output
    with torch.no_grad():
        unmasked = model(padded.nan_to_num(0.0), pdays)
    assert not torch.allclose(unmasked, ref, atol=1e-3)


def test_samples_with_different_numbers_of_dates_share_a_batch():
    model = tiny()
    x, days = series(b=2, t=4)
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    with torch.no_grad():
        both = model(x, days, mask)
        second = model(x[1:, :2], days[1:, :2])
    torch.testing.assert_close(both[1:], second, rtol=1e-4, atol=1e-5)


def test_permuting_dates_with_their_days_keeps_the_output_and_days_matter():
    model = tiny()
    x, days = series(t=5)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        ref = model(x, days)
        same = model(x[:, perm], days[:, perm])
        shuffled_days = model(x[:, perm], days)  # frames moved, days kept in place
    torch.testing.assert_close(same, ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(shuffled_days, ref, atol=1e-3)


def test_a_sample_without_any_real_date_gives_finite_logits():
    model = tiny()
    x, days = series(b=2, t=3)
    mask = torch.tensor([[True, True, True], [False, False, False]])
    with torch.no_grad():
        out = model(x, days, mask)
    assert torch.isfinite(out).all()


def test_gradients_reach_every_parameter():
    model = tiny().train()
    x, days = series(b=2, t=3)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    out = model(x, days, mask)
    torch.nn.functional.cross_entropy(out, torch.randint(0, 3, (2, 16, 16))).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_positional_encoding_is_the_sinusoid_of_days():
    pe = PositionalEncoding(8, period=1000.0, repeat=2)
    days = torch.tensor([[0, 17, 365]])
    enc = pe(days)
    assert enc.shape == (1, 3, 16)
    for t, d in enumerate([0, 17, 365]):
        for i in range(8):
            angle = d / 1000.0 ** (2 * (i // 2) / 8)
            want = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert enc[0, t, i].item() == pytest.approx(want, abs=2e-5)
            assert enc[0, t, i + 8].item() == pytest.approx(want, abs=2e-5)


def test_masked_group_norm_is_group_norm_when_every_date_is_real():
    norm = torch.nn.GroupNorm(4, 16)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(6, 5, 16)
    ref = norm(x.permute(0, 2, 1)).permute(0, 2, 1)
    out = _masked_group_norm(x, torch.ones(6, 5, dtype=torch.bool), norm)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_attention_weights_sum_to_one_over_real_dates():
    ltae = LTAE2d(in_channels=16, n_head=4, d_k=4, d_model=16, out_channels=16).eval()
    x = torch.randn(2, 4, 16, 3, 3)
    mask = torch.tensor([[True, False, True, True], [True, True, True, True]])
    _, attn = ltae(x, torch.arange(4).expand(2, 4) * 30, mask)
    assert attn.shape == (4, 2, 4, 3, 3)
    torch.testing.assert_close(attn.sum(dim=2), torch.ones(4, 2, 3, 3))
    assert (attn[:, 0, 1] == 0).all()


def test_bad_options_and_inputs_name_the_field():
    with pytest.raises(OptionError) as err:
        build("utae", in_channels=5, classes=3, **{**TINY, "n_head": 3})
    assert err.value.field == "model_kwargs.n_head"
    with pytest.raises(OptionError) as err:
        build("utae", in_channels=5, classes=3, encoder_widths=[8, 16], decoder_widths=[8, 8])
    assert err.value.field == "model_kwargs.decoder_widths"
    model = tiny()
    x, days = series()
    with pytest.raises(InputError, match="series"):
        model(x[:, :, :4], days)
    with pytest.raises(InputError, match="days"):
        model(x, days[:, :2])
    with pytest.raises(InputError, match="series_mask"):
        model(x, days, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(InputError, match="T = 0"):
        model(x[:, :0], days[:, :0])
