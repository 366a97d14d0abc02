"""Every entry of the zoo, declared without torch: its factory (imported when it is built), the
paper it follows, and its golden counts (params, MACs by the one convention, fingerprint),
which `tests/test_zoo.py` recounts for every entry.

To add a model: write its factory (a function returning an `nn.Module`) in a module of its
own, declare it here with `zoo_entry(...)` and `golden=None`, print its counts with
`python -c "from shrinkbench.vision.models import count_model; print(count_model('NAME'))"`, and
write them into `golden` (checked against the published counts where a paper states them).

Width-scaled dense variants (`_w0.5`, `_w0.25`, `_w0.125`) multiply every hidden width by the
factor, rounded half up (`shrinkbench.vision.models.lenet.scaled_width`): the "dense small" model of
the same family, to put against a pruned large one at equal parameters or MACs.
"""
from __future__ import annotations

from shrinkbench.vision.models.zoo import Golden, zoo_entry

HAN2015 = ("Han, Pool, Tran, Dally. Learning both Weights and Connections for Efficient "
           "Neural Networks. NeurIPS 2015")
HE2016 = "He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016 (CIFAR, option A)"
RESNET18_CIFAR = ("ResNet-18 with a 3x3 stem for 32x32 inputs, as in e.g. Liu et al. 2019 "
                  "'Rethinking the Value of Network Pruning' and many later papers")
ZAGORUYKO2015 = ("Zagoruyko 2015, '92.45% on CIFAR-10 in Torch' (vgg_bn_drop), the CIFAR VGG of "
                 "the original ShrinkBench (Blalock et al. 2020)")
WIDTHS = (0.5, 0.25, 0.125)
"""Width multipliers of the dense LeNet variants."""
RESNET_WIDTHS = (0.5, 0.25)
"""Width multipliers of the dense CIFAR ResNet-20 and -56 variants."""

GOLDEN: dict[str, Golden] = {
    "cifar_resnet20": Golden(269_722, 40_551_040, "81c90acc6996bdd1"),
    "cifar_resnet20_1x28x28": Golden(269_434, 30_821_248, "786b3090171bd8b2"),
    "cifar_resnet20_w0.5": Golden(68_050, 10_248_512, "aa0dfce7e9481f5d"),
    "cifar_resnet20_w0.5_1x28x28": Golden(67_906, 7_733_696, "122c1c9250f81ebb"),
    "cifar_resnet20_w0.25": Golden(17_326, 2_617_504, "96760bc1b2274fc4"),
    "cifar_resnet20_w0.25_1x28x28": Golden(17_254, 1_947_616, "f3292d7f4fd5dbf1"),
    "cifar_resnet32": Golden(464_154, 68_862_592, "e03d21c4cec6e900"),
    "cifar_resnet32_1x28x28": Golden(463_866, 52_497_280, "b1f7830e15d2384f"),
    "cifar_resnet44": Golden(658_586, 97_174_144, "c2944021bf9e9369"),
    "cifar_resnet44_1x28x28": Golden(658_298, 74_173_312, "8f599bea1d72ad3b"),
    "cifar_resnet56": Golden(853_018, 125_485_696, "86adb9f3d553437a"),
    "cifar_resnet56_1x28x28": Golden(852_730, 95_849_344, "00c28c684a8e9489"),
    "cifar_resnet56_w0.5": Golden(214_546, 31_482_176, "4717000fa44357cd"),
    "cifar_resnet56_w0.5_1x28x28": Golden(214_402, 23_990_720, "636cf3e25b913940"),
    "cifar_resnet56_w0.25": Golden(54_286, 7_925_920, "6d9f5026d5251632"),
    "cifar_resnet56_w0.25_1x28x28": Golden(54_214, 6_011_872, "0599bc1502dc06a0"),
    "cifar_resnet110": Golden(1_727_962, 252_887_680, "072ff64e6cd01ae2"),
    "cifar_resnet110_1x28x28": Golden(1_727_674, 193_391_488, "4a28a952faaa8835"),
    "cifar_resnet18": Golden(11_173_962, 555_422_720, "a3ded213f96ec36c"),
    "cifar_resnet18_1x28x28": Golden(11_172_810, 455_800_832, "353d1f32b301293c"),
    "cifar_vgg16_bn": Golden(14_991_946, 313_463_808, "d76bd459e0d85500"),
    "cifar100_vgg16_bn": Golden(15_038_116, 313_509_888, "4f8f6c1e6aebeb78"),
    "cifar_vgg16_bn_1x28x28": Golden(14_990_794, 267_909_120, "9a148d7cae49ac7d"),
    "imagenet_resnet18": Golden(11_689_512, 1_814_073_344, "ffdfd941e66e8b79"),
    "imagenet_resnet50": Golden(25_557_032, 4_089_184_256, "0f6972808f193f37"),
    "imagenet_vgg16": Golden(138_357_544, 15_470_264_320, "7bc30e4e6f64399c"),
    "imagenet_alexnet": Golden(61_100_840, 714_188_480, "f4fdab15aee5295b"),
    "imagenet_mobilenet_v2": Golden(3_504_872, 300_774_272, "01550d1e74d2e3c3"),
    "lenet_300_100": Golden(266_610, 266_200, "098fba9e26bffbd1"),
    "lenet5_caffe": Golden(431_080, 2_293_000, "8ac7468c9f4a06de"),
    "lenet_300_100_w0.5": Golden(125_810, 125_600, "1831d1be8c677eb1"),
    "lenet5_caffe_w0.5": Golden(109_295, 646_500, "791f394959ac6254"),
    "lenet_300_100_w0.25": Golden(61_035, 60_925, "d48e2284ac122d7e"),
    "lenet5_caffe_w0.25": Golden(29_153, 203_250, "a2add72ac4956a42"),
    "lenet_300_100_w0.125": Golden(30_477, 30_416, "ec9c018d94dc5dca"),
    "lenet5_caffe_w0.125": Golden(7_285, 78_678, "1b73b7b6f4ef7d70"),
}
"""name -> golden counts (filled from `count_model`, checked by the tests)."""


def _lenets() -> None:
    for width in (1.0, *WIDTHS):
        suffix = "" if width == 1.0 else f"_w{width:g}"
        scaled = "" if width == 1.0 else f", every hidden width x{width:g}"
        zoo_entry(f"lenet_300_100{suffix}", "shrinkbench.vision.models.lenet:lenet_300_100", {"width": width},
                  input_shape=(1, 28, 28), num_classes=10, excluded=("fc3",), reference=HAN2015, family="lenet",
                  description=f"MLP 784-300-100-10 with ReLU{scaled}", golden=GOLDEN.get(f"lenet_300_100{suffix}"))
        zoo_entry(f"lenet5_caffe{suffix}", "shrinkbench.vision.models.lenet:lenet5_caffe", {"width": width},
                  input_shape=(1, 28, 28), num_classes=10, excluded=("fc2",), reference=HAN2015, family="lenet",
                  description=f"Caffe LeNet-5: conv20 5x5, maxpool, conv50 5x5, maxpool, fc500, ReLU, fc10{scaled}",
                  golden=GOLDEN.get(f"lenet5_caffe{suffix}"))


def _cifar_resnets() -> None:
    for depth in (20, 32, 44, 56, 110):
        n = (depth - 2) // 6
        widths = (1.0, *RESNET_WIDTHS) if depth in (20, 56) else (1.0,)
        for width in widths:
            for suffix, shape in (("", (3, 32, 32)), ("_1x28x28", (1, 28, 28))):
                tag = "" if width == 1.0 else f"_w{width:g}"
                name = f"cifar_resnet{depth}{tag}{suffix}"
                zoo_entry(name, "shrinkbench.vision.models.cifar_resnet:option_a",
                          {"depth": depth, "in_channels": shape[0], "width": width}, input_shape=shape, num_classes=10, excluded=("fc",), reference=HE2016,
                          family="cifar_resnet", golden=GOLDEN.get(name),
                          description=f"ResNet-{depth}, 3 stages x {n} basic blocks (16/32/64"
                                      f"{'' if width == 1.0 else f' x{width:g}'}), option-A shortcuts")
    for suffix, shape in (("", (3, 32, 32)), ("_1x28x28", (1, 28, 28))):
        zoo_entry(f"cifar_resnet18{suffix}", "shrinkbench.vision.models.cifar_resnet:resnet18", {"in_channels": shape[0]},
                  input_shape=shape, num_classes=10, excluded=("fc",), reference=RESNET18_CIFAR,
                  family="cifar_resnet18", golden=GOLDEN.get(f"cifar_resnet18{suffix}"),
                  description="ResNet-18 layout (64-128-256-512, 2 blocks/stage, 1x1 projection shortcuts), "
                              "3x3 stem, no max-pool")


def _cifar_vggs() -> None:
    for name, shape, classes in (("cifar_vgg16_bn", (3, 32, 32), 10), ("cifar100_vgg16_bn", (3, 32, 32), 100),
                                 ("cifar_vgg16_bn_1x28x28", (1, 28, 28), 10)):
        zoo_entry(name, "shrinkbench.vision.models.cifar_vgg:VGGBnDrop", {"in_channels": shape[0], "num_classes": classes},
                  num_classes=classes, input_shape=shape, excluded=("classifier.5",), reference=ZAGORUYKO2015, family="cifar_vgg",
                  golden=GOLDEN.get(name),
                  description=f"VGG-16 with BN and dropout, fc 512-512-{classes} (ShrinkBench's CIFAR VGG)")


def _imagenet() -> None:
    for name, builder, excluded, reference in (
            ("imagenet_resnet18", "resnet18", ("fc",), "He et al. 2016, torchvision resnet18"),
            ("imagenet_resnet50", "resnet50", ("fc",), "He et al. 2016, torchvision resnet50 (v1.5: stride in 3x3)"),
            ("imagenet_vgg16", "vgg16", ("classifier.6",), "Simonyan & Zisserman 2015, torchvision vgg16 (no BN)"),
            ("imagenet_alexnet", "alexnet", ("classifier.6",),
             "Krizhevsky 2014 'one weird trick' variant, torchvision alexnet"),
            ("imagenet_mobilenet_v2", "mobilenet_v2", ("classifier.1",), "Sandler et al. 2018, torchvision mobilenet_v2")):
        zoo_entry(name, "shrinkbench.vision.models.imagenet:torchvision_model", {"builder": builder}, input_shape=(3, 224, 224),
                  num_classes=1000, excluded=excluded, reference=reference, family="imagenet",
                  golden=GOLDEN.get(name), description=f"torchvision {builder}, weights=None")


_cifar_resnets()
_cifar_vggs()
_imagenet()
_lenets()
