"""The MACs convention on hand-computed small cases."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shrinkbench.core.macs import count_macs, register_formula


def test_grouped_dilated_strided_conv_by_hand():
    # 8 -> 12 channels, 3x3, groups 4, dilation 2, stride 2, padding 1 on 17x17:
    # effective kernel 5, H_out = floor((17 + 2 - 5) / 2) + 1 = 8
    conv = nn.Conv2d(8, 12, 3, stride=2, padding=1, dilation=2, groups=4)
    profile = count_macs(nn.Sequential(conv), (8, 17, 17))
    assert profile.macs == 12 * 8 * 8 * (8 // 4) * 3 * 3


def test_depthwise_and_1d_and_3d_convs_and_transpose():
    model = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False))
    assert count_macs(model, (6, 10, 10)).macs == 6 * 10 * 10 * 1 * 9
    assert count_macs(nn.Sequential(nn.Conv1d(4, 5, 3)), (4, 20)).macs == 5 * 18 * 4 * 3
    assert count_macs(nn.Sequential(nn.Conv3d(2, 3, 2)), (2, 4, 4, 4)).macs == 3 * 27 * 2 * 8
    # transpose conv: every input position multiplies the whole (C_in, C_out, k, k) weight
    assert count_macs(nn.Sequential(nn.ConvTranspose2d(4, 2, 3, stride=2)), (4, 5, 5)).macs == 25 * 4 * 2 * 9


def test_mlp_with_known_zeros_and_excluded_extras():
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight[:2] = 0          # 12 of 24 weights zero
        model[4].weight[0, :3] = 0       # 3 of 12 weights zero
    profile = count_macs(model, (2, 3))
    assert profile.macs == 6 * 4 + 4 * 3
    assert profile.macs_nonzero({"1": 12, "4": 9}) == 12 + 9


def test_linear_on_sequence_counts_every_position():
    model = nn.Sequential(nn.Linear(8, 5))
    assert count_macs(model, (7, 8)).macs == 7 * 8 * 5


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 4)
        self.proj = nn.Parameter(torch.ones(4, 4))

    def forward(self, x):
        y, _ = self.rnn(x)
        return y @ self.proj


def test_unknown_layers_and_functional_matmuls_are_reported_not_zeroed():
    profile = count_macs(Odd(), (3, 4))
    assert any("rnn (GRU)" in u for u in profile.uncounted)
    assert any("<model> (Odd)" in u for u in profile.uncounted)
    assert any("functional" in u for u in profile.uncounted)


def test_functional_linear_inside_counted_module_is_not_double_reported():
    profile = count_macs(nn.Sequential(nn.Linear(3, 2), nn.ReLU()), (3,))
    assert profile.uncounted == ()


def test_formula_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        register_formula(nn.Linear)(lambda m, i, o: 1)


def test_weight_sharing_counts_each_call():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 5)

        def forward(self, x):
            return self.fc(F.relu(self.fc(x)))

    assert count_macs(Twice(), (5,)).macs == 2 * 25


def test_counting_leaves_model_mode_and_weights_alone():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5)).train()
    before = model[0].weight.clone()
    count_macs(model, (3,))
    assert model.training and torch.equal(model[0].weight, before)
