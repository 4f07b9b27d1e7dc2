"""training.loss: NT-Xent against a hand computation, and top-1 retrieval."""

import math

import numpy as np
import pytest
import torch

from training.loss import nt_xent, top1_retrieval


def hand_nt_xent(anchors, positives, temperature):
    """SimCLR's loss written out with loops and math.exp, for comparison."""
    views = [v / np.linalg.norm(v) for v in list(anchors) + list(positives)]
    count = len(anchors)
    total = 0.0
    for i in range(2 * count):
        partner = (i + count) % (2 * count)
        denominator = sum(math.exp(float(views[i] @ views[k]) / temperature) for k in range(2 * count) if k != i)
        total += -math.log(math.exp(float(views[i] @ views[partner]) / temperature) / denominator)
    return total / (2 * count)


@pytest.mark.parametrize("temperature", [0.05, 0.5])
def test_nt_xent_equals_a_hand_computation_on_a_small_batch(temperature):
    generator = torch.Generator().manual_seed(0)
    anchors = torch.randn(5, 8, generator=generator, dtype=torch.float64)
    positives = anchors + 0.7 * torch.randn(5, 8, generator=generator, dtype=torch.float64)
    expected = hand_nt_xent(anchors.numpy(), positives.numpy(), temperature)
    assert nt_xent(anchors, positives, temperature).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_is_lower_for_matching_pairs_and_symmetric_in_its_arguments():
    generator = torch.Generator().manual_seed(1)
    anchors = torch.nn.functional.normalize(torch.randn(6, 16, generator=generator), dim=1)
    shuffled = anchors[torch.tensor([1, 2, 3, 4, 5, 0])]
    assert nt_xent(anchors, anchors + 0.01).item() < nt_xent(anchors, shuffled).item()
    assert nt_xent(anchors, shuffled).item() == pytest.approx(nt_xent(shuffled, anchors).item(), rel=1e-6)


def test_top1_retrieval_counts_positives_whose_nearest_anchor_is_their_own():
    anchors = torch.eye(4)
    positives = torch.eye(4)[torch.tensor([0, 1, 3, 2])]
    assert top1_retrieval(anchors, positives) == 0.5
