"""The model zoo against published parameter and MAC counts (ARCHITECTURE.md, section 2)."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from shrinkbench.core.errors import UnknownNameError
from shrinkbench.core.macs import count_macs
from shrinkbench.vision.models import (build_on_meta, count_model, create_model, describe_model, fingerprint,
                                list_models, model_spec)

# (model, params, MACs) from the reference table; LeNets: Han et al. 2015 architectures,
# counted by hand: 784*300+300 + 300*100+100 + 100*10+10 = 266,610 params and
# 784*300 + 300*100 + 100*10 = 266,200 MACs; LeNet-5 (Caffe): conv 20@5x5 on 28x28 -> 24x24,
# pool -> 12x12, conv 50@5x5 -> 8x8, pool -> 4x4, fc 800-500-10.
REFERENCE = [
    ("cifar_resnet20", 269_722, 40_551_040),
    ("cifar_resnet56", 853_018, 125_485_696),
    ("cifar_resnet110", 1_727_962, 252_887_680),
    ("imagenet_resnet18", 11_689_512, 1_814_073_344),
    ("imagenet_resnet50", 25_557_032, 4_089_184_256),
    ("imagenet_vgg16", 138_357_544, 15_470_264_320),
    ("imagenet_alexnet", 61_100_840, 714_188_480),
    ("imagenet_mobilenet_v2", 3_504_872, 300_774_272),
    ("lenet_300_100", 266_610, 266_200),
    ("lenet5_caffe", 20 * 25 + 20 + 50 * 20 * 25 + 50 + 800 * 500 + 500 + 500 * 10 + 10,
     24 * 24 * 20 * 25 + 8 * 8 * 50 * 20 * 25 + 800 * 500 + 500 * 10),
    # width-scaled dense variants, by hand: LeNet-300-100 at 1/2 is 784-150-50-10
    ("lenet_300_100_w0.5", 784 * 150 + 150 + 150 * 50 + 50 + 50 * 10 + 10, 784 * 150 + 150 * 50 + 50 * 10),
    # LeNet-5 at 1/8: conv 3 (2.5 rounded half up), conv 6 (6.25), fc 63 (62.5)
    ("lenet5_caffe_w0.125", 3 * 25 + 3 + 6 * 3 * 25 + 6 + 96 * 63 + 63 + 63 * 10 + 10,
     24 * 24 * 3 * 25 + 8 * 8 * 6 * 3 * 25 + 96 * 63 + 63 * 10),
]


@pytest.mark.parametrize("name,params,macs", REFERENCE)
def test_reference_counts_to_the_unit(name, params, macs):
    info = describe_model(name, count=True)
    assert info["params"] == params
    assert info["macs"] == macs
    assert info["uncounted"] == []


@pytest.mark.parametrize("name", list_models())
def test_every_golden_count_is_the_real_count(name):
    spec = model_spec(name)
    assert spec.golden is not None, f"{name} has no golden counts in shrinkbench/vision/models/catalog.py"
    assert count_model(name) == spec.golden


def test_listing_the_zoo_needs_no_torch():
    code = ("import sys; from shrinkbench.vision.models import list_models, describe_model\n"
            "rows = [describe_model(n) for n in list_models()]\n"
            "assert rows[0]['params'] and 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("name", ["cifar_resnet20", "lenet_300_100", "lenet5_caffe",
                                  "cifar_vgg16_bn", "imagenet_mobilenet_v2"])
def test_ptflops_aten_agrees_up_to_bias_additions(name):
    ptflops = pytest.importorskip("ptflops")
    model = create_model(name)
    shape = model_spec(name).input_shape
    profile = count_macs(model, shape)
    theirs, _ = ptflops.get_model_complexity_info(model, shape, backend="aten", as_strings=False,
                                                  print_per_layer_stat=False, verbose=False)
    modules = dict(model.named_modules())
    bias_adds = sum(layer.positions * modules[layer.name].bias.numel() for layer in profile.layers
                    if modules[layer.name].bias is not None)
    assert theirs == profile.macs + bias_adds


@pytest.mark.parametrize("name", list_models())
def test_every_entry_builds_runs_and_describes_itself(name):
    spec = model_spec(name)
    model = build_on_meta(name)
    out = model(torch.zeros((2, *spec.input_shape), device="meta"))
    assert tuple(out.shape) == (2, spec.num_classes)
    names = dict(model.named_modules())
    for excluded in spec.excluded:
        assert isinstance(names[excluded], nn.Linear), "the excluded layer is the classifier"
        assert names[excluded].out_features == spec.num_classes
    assert spec.reference and spec.description


def test_small_models_run_for_real():
    for name in ["lenet_300_100", "lenet5_caffe", "cifar_resnet20_1x28x28", "cifar_vgg16_bn_1x28x28"]:
        spec = model_spec(name)
        out = create_model(name).eval()(torch.randn(3, *spec.input_shape))
        assert out.shape == (3, spec.num_classes) and torch.isfinite(out).all()


def test_option_a_shortcuts_have_no_parameters():
    model = create_model("cifar_resnet20")
    shortcut_params = [n for n, _ in model.named_parameters() if "shortcut" in n]
    assert shortcut_params == []
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 19


def test_cifar_resnet18_is_not_torchvision_resnet18():
    assert describe_model("cifar_resnet18", count=True)["params"] == 11_173_962
    assert describe_model("cifar_resnet18")["fingerprint"] != describe_model("imagenet_resnet18")["fingerprint"]


def test_vgg_variants_differ_in_classes():
    assert model_spec("cifar100_vgg16_bn").num_classes == 100
    assert describe_model("cifar100_vgg16_bn")["params"] - describe_model("cifar_vgg16_bn")["params"] == 90 * 513


def test_fingerprints_unique_and_weight_independent():
    prints = {name: count_model(name).fingerprint for name in list_models()}
    assert len(set(prints.values())) == len(prints)
    assert fingerprint(create_model("lenet_300_100", seed=0)) == fingerprint(create_model("lenet_300_100", seed=1))


def test_fingerprints_stable_across_processes():
    code = ("from shrinkbench.vision.models import count_model;"
            "print(count_model('cifar_resnet56').fingerprint, count_model('lenet5_caffe').fingerprint)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [count_model("cifar_resnet56").fingerprint, count_model("lenet5_caffe").fingerprint]


def test_same_seed_same_weights_and_no_global_rng_change():
    state = torch.random.get_rng_state()
    a = create_model("lenet5_caffe", seed=3)
    b = create_model("lenet5_caffe", seed=3)
    c = create_model("lenet5_caffe", seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_unknown_model_lists_close_matches():
    with pytest.raises(UnknownNameError) as err:
        model_spec("cifar_resnet65")
    message = str(err.value)
    assert "cifar_resnet56" in message and "\n" not in message
    assert list_models("cifar_resnet5*") == ["cifar_resnet56", "cifar_resnet56_1x28x28", "cifar_resnet56_w0.5",
                                             "cifar_resnet56_w0.5_1x28x28", "cifar_resnet56_w0.25",
                                             "cifar_resnet56_w0.25_1x28x28"]
