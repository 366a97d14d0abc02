"""The channels-last max pooling computes torch's max pooling bit for bit (values, the indices
its gradient follows, the gradient), and training through it changes no weight."""
import copy

import pytest
import torch
from torch import nn

from shrinkbench.vision.kernels import channels_last_max_pool2d, fast_max_pooling

CONFIGS = [
    dict(kernel_size=2),
    dict(kernel_size=2, stride=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1),  # overlapping windows (ImageNet ResNets)
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0)),
    dict(kernel_size=2, stride=1, dilation=2),
    dict(kernel_size=3, stride=3, ceil_mode=True),
]


def inputs(kind: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    shape = (3, 5, 11, 13)
    if kind == "random":
        return torch.randn(shape, generator=g)
    if kind == "ties":  # few distinct values: most windows hold their maximum more than once
        return torch.randint(0, 3, shape, generator=g).float()
    if kind == "zeros":
        return torch.zeros(shape)
    x = torch.randn(shape, generator=g)  # NaN here and there, twice in some windows
    x[0, 0, 0, 0] = x[0, 0, 0, 1] = x[1, 2, 5, 5] = float("nan")
    return x


def both(config, x, grad_out_seed=1):
    """(values, input gradient) of torch's module and of the channels-last path."""
    out = []
    for fast in (False, True):
        module = nn.MaxPool2d(**config)
        xi = x.clone().requires_grad_()
        y = channels_last_max_pool2d(module, xi) if fast else module(xi)
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(grad_out_seed))
        y.backward(g)
        out.append((y.detach(), xi.grad))
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("kind", ["random", "ties", "zeros", "nan"])
def test_values_and_gradients_equal_torch_bit_for_bit(config, kind):
    (y0, g0), (y1, g1) = both(config, inputs(kind))
    assert y1.is_contiguous() and y1.shape == y0.shape
    assert torch.equal(y0.nan_to_num(7.0), y1.nan_to_num(7.0)) and torch.equal(y0.isnan(), y1.isnan())
    assert torch.equal(g0, g1)  # the same element of each window took the gradient


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_without_gradient_and_on_a_channels_last_input(config):
    module = nn.MaxPool2d(**config)
    x = inputs("ties")
    with torch.inference_mode():
        assert torch.equal(channels_last_max_pool2d(module, x), module(x))
    cl = x.contiguous(memory_format=torch.channels_last)
    assert torch.equal(channels_last_max_pool2d(module, cl), module(cl))


def test_other_inputs_and_return_indices_take_the_modules_own_forward():
    module = nn.MaxPool2d(2, return_indices=True)
    x = torch.randn(2, 3, 8, 8)
    y, idx = channels_last_max_pool2d(module, x)
    y0, idx0 = module(x)
    assert torch.equal(y, y0) and torch.equal(idx, idx0)
    plain = nn.MaxPool2d(2)
    unbatched = torch.randn(3, 8, 8)
    assert torch.equal(channels_last_max_pool2d(plain, unbatched), plain(unbatched))
    ints = torch.randint(0, 9, (1, 1, 4, 4))
    assert torch.equal(channels_last_max_pool2d(plain, ints.float()), plain(ints.float()))


class Sub(nn.MaxPool2d):
    def forward(self, x):
        return super().forward(x) + 1


def test_the_block_patches_exact_max_pools_and_restores_them():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Sequential(nn.MaxPool2d(2)), Sub(2))
    pools = [model[1], model[2][0]]
    with fast_max_pooling(model):
        assert all("forward" in vars(p) for p in pools) and "forward" not in vars(model[3])
        with fast_max_pooling(model):  # nested: the inner block leaves them to the outer one
            pass
        assert all("forward" in vars(p) for p in pools)
    assert not any("forward" in vars(p) for p in pools)
    with pytest.raises(RuntimeError):
        with fast_max_pooling(model):
            raise RuntimeError("boom")
    assert not any("forward" in vars(p) for p in pools)


def test_training_through_the_fast_pooling_gives_the_same_weights():
    """LeNet-5 (Caffe) trained 5 SGD steps with momentum: every weight equal bit for bit."""
    from shrinkbench.vision.models import create_model

    g = torch.Generator().manual_seed(3)
    batches = [(torch.randn(32, 1, 28, 28, generator=g), torch.randint(0, 10, (32,), generator=g))
               for _ in range(5)]
    base = create_model("lenet5_caffe", seed=0)
    results = []
    for fast in (False, True):
        model = copy.deepcopy(base)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        with fast_max_pooling(model) if fast else torch.enable_grad():
            for x, y in batches:
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
        results.append(model.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_second_order_gradients_through_the_fast_pooling_equal_torchs():
    """GraSP-style Hessian-vector products (gradual pruning scores inside training): equal."""
    results = []
    for fast in (False, True):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 5 * 5, 4))
        x, y = torch.randn(6, 1, 12, 12), torch.randint(0, 4, (6,))
        with fast_max_pooling(model) if fast else torch.enable_grad():
            loss = nn.functional.cross_entropy(model(x), y)
            grads = torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
            hvp = torch.autograd.grad(sum((g * g.detach()).sum() for g in grads), list(model.parameters()))
        results.append(hvp)
    assert all(torch.equal(a, b) for a, b in zip(*results))
