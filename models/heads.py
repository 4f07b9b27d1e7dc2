"""Divide-and-encode projection heads, batched over groups (no Python loop over branches)."""

from __future__ import annotations

import math

import torch
from torch import nn


class GroupedProjection(nn.Module):
    """Split features into ``groups`` equal slices; each slice has its own small MLP to one output.

    Per group g, reading features [g * d, (g + 1) * d): Linear(d -> hidden) -> ELU
    [-> LayerNorm(hidden) with its own affine] -> Linear(hidden -> 1). All groups run as one einsum.
    (B, features) -> (B, groups).
    """

    def __init__(self, features: int, groups: int = 128, hidden: int = 32, layer_norm: bool = True):
        super().__init__()
        if features % groups:
            raise ValueError(f"{features} features cannot be split into {groups} equal groups")
        self.groups, self.group_size, self.hidden = groups, features // groups, hidden
        self.weight1 = nn.Parameter(torch.empty(groups, self.group_size, hidden))
        self.bias1 = nn.Parameter(torch.empty(groups, hidden))
        if layer_norm:
            self.norm_weight = nn.Parameter(torch.ones(groups, hidden))
            self.norm_bias = nn.Parameter(torch.zeros(groups, hidden))
        else:
            self.register_parameter("norm_weight", None)
            self.register_parameter("norm_bias", None)
        self.weight2 = nn.Parameter(torch.empty(groups, hidden))
        self.bias2 = nn.Parameter(torch.empty(groups))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default initialisation, per group.
        for weight, bias, fan_in in (
            (self.weight1, self.bias1, self.group_size),
            (self.weight2, self.bias2, self.hidden),
        ):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.reshape(features.shape[0], self.groups, self.group_size)
        hidden = torch.einsum("bgd,gdh->bgh", x, self.weight1) + self.bias1
        hidden = nn.functional.elu(hidden)
        if self.norm_weight is not None:
            hidden = nn.functional.layer_norm(hidden, (self.hidden,)) * self.norm_weight + self.norm_bias
        return torch.einsum("bgh,gh->bg", hidden, self.weight2) + self.bias2
