"""Losses: perfect predictions cost ~0, values match hand computations, ignore works."""

from __future__ import annotations

import pytest
import torch

from landforge.training.losses import (
    IGNORE_INDEX,
    HeadLoss,
    MultiTaskLoss,
    binary_dice_loss,
    ce_dice_loss,
    dice_loss,
)


def confident(target: torch.Tensor, k: int) -> torch.Tensor:
    """Logits that are +20 on the true class and -20 elsewhere."""
    onehot = torch.nn.functional.one_hot(target.clamp(min=0), k).permute(0, 3, 1, 2).float()
    return onehot * 40 - 20


def test_perfect_predictions_cost_almost_nothing():
    target = torch.randint(0, 3, (2, 8, 8))
    assert dice_loss(confident(target, 3), target) < 1e-6
    assert ce_dice_loss(confident(target, 3), target) < 1e-6
    fp = torch.randint(0, 2, (2, 8, 8))
    logits = (fp.float() * 40 - 20)[:, None]
    assert binary_dice_loss(logits, fp) < 1e-6
    assert ce_dice_loss(logits, fp) < 1e-6


def test_binary_dice_matches_hand_computation():
    # p = sigmoid(0) = 0.5 everywhere; 4 pixels, 1 positive; eps = 1:
    # L_B = 1 - (2 * 0.5 + 1) / (2.0 + 1 + 1) = 1 - 2/4 = 0.5
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[1, 0], [0, 0]]])
    assert binary_dice_loss(logits, target, eps=1.0).item() == pytest.approx(0.5)
    assert binary_dice_loss(logits, target, eps=0.0).item() == pytest.approx(1 - 1 / 3)


def test_multiclass_dice_is_the_class_mean():
    # uniform softmax over 2 classes on 2 pixels, one of each class, eps = 0:
    # per class 1 - 2*0.5 / (1.0 + 1) = 0.5, mean 0.5
    logits = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[0, 1]]])
    assert dice_loss(logits, target, eps=0.0).item() == pytest.approx(0.5)
    # CE of a uniform 2-class prediction is ln 2
    expected = 0.5 * torch.log(torch.tensor(2.0)).item() + 0.5 * 0.5
    assert ce_dice_loss(logits, target, eps=0.0).item() == pytest.approx(expected)


def test_ignored_pixels_do_not_count():
    target = torch.randint(0, 3, (1, 8, 8))
    logits = confident(target, 3)
    wrong = target.clone()
    wrong[0, :4] = (target[0, :4] + 1) % 3  # mislabel the top half ...
    assert dice_loss(logits, wrong) > 0.1
    wrong[0, :4] = IGNORE_INDEX  # ... then ignore it
    assert dice_loss(logits, wrong) < 1e-6
    assert ce_dice_loss(logits, wrong) < 1e-6
    everything_ignored = torch.full_like(target, IGNORE_INDEX)
    loss = dice_loss(logits.requires_grad_(), everything_ignored)
    assert loss.item() == 0.0
    loss.backward()  # still differentiable


def test_multitask_use_loss_counts_building_pixels_only():
    fp = torch.zeros(1, 4, 4, dtype=torch.long)
    fp[0, :2] = 1
    use = torch.randint(0, 3, (1, 4, 4))
    use_logits = confident(use, 3)
    use_target = use.clone()
    use_target[0, 2:] = (use[0, 2:] + 1) % 3  # wrong outside the buildings only
    outputs = {"footprint": (fp.float() * 40 - 20)[:, None], "use": use_logits}
    targets = {"footprint": fp, "use": use_target}
    masked = MultiTaskLoss(
        {"footprint": HeadLoss("dice", 1.0), "use": HeadLoss("dice", 2.0, mask_by="footprint")}
    )
    total, parts = masked(outputs, targets)
    assert parts["use"] < 1e-6 and total < 1e-6
    unmasked = MultiTaskLoss({"footprint": HeadLoss("dice", 1.0), "use": HeadLoss("dice", 2.0)})
    total, parts = unmasked(outputs, targets)
    assert total.item() == pytest.approx(parts["footprint"].item() + 2.0 * parts["use"].item())
    assert parts["use"] > 0.1
    with pytest.raises(ValueError, match="unknown head"):
        MultiTaskLoss({"use": HeadLoss(mask_by="footprint")})


@pytest.mark.parametrize("kind", ["dice", "ce_dice", "ce"])
def test_gradients_are_finite(kind):
    torch.manual_seed(0)
    fp_logits = torch.randn(2, 1, 8, 8, requires_grad=True)
    use_logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    fp = torch.randint(0, 2, (2, 8, 8))
    use = torch.randint(0, 3, (2, 8, 8))
    use[0] = IGNORE_INDEX
    loss_fn = MultiTaskLoss(
        {"footprint": HeadLoss(kind), "use": HeadLoss(kind, mask_by="footprint")}
    )
    total, _ = loss_fn({"footprint": fp_logits, "use": use_logits}, {"footprint": fp, "use": use})
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(fp_logits.grad).all() and torch.isfinite(use_logits.grad).all()
    assert fp_logits.grad.abs().sum() > 0
