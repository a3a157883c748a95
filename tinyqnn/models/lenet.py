"""LeNet-5 (LeCun et al. 1998) for 28x28 MNIST, with the hooks the quantization lessons need."""
from __future__ import annotations

from collections.abc import Callable

from .. import nn
from ..engine import Tensor

#: ``factory(name, num_features) -> Module`` builds the activation that follows a layer.
ActivationFactory = Callable[[str, int], nn.Module]


def relu_factory(name: str, num_features: int) -> nn.Module:
    return nn.ReLU()


class LeNet5(nn.Module):
    """conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> 120 -> 84 -> 10.

    The original network reads 32x32 images; MNIST's 28x28 digits are zero-padded by 2 inside
    ``conv1`` (``padding=2``), which gives the same 28x28 -> 14x14 -> 10x10 -> 5x5 feature sizes.

    Args:
        num_classes: outputs of the last layer.
        batch_norm: put a batch norm before each of the four activations (Yin et al. 2019 do,
            so that a fixed quantization step ``alpha`` suits every layer).
        bn_affine: learn a scale and shift in those batch norms; ``False`` is the scale-free BN of
            the paper (the activation's ``alpha`` sets the scale).
        activation: ``factory(name, num_features)`` for the activations ``act1..act4``;
            default ReLU. The quantization unit passes quantized activations here.
        pool: ``"max"`` (modern default) or ``"avg"`` (closer to the original subsampling).

    Shapes: x (N, 1, 28, 28) -> logits (N, num_classes).
    """

    activation_names = ("act1", "act2", "act3", "act4")

    def __init__(
        self,
        num_classes: int = 10,
        batch_norm: bool = False,
        bn_affine: bool = True,
        activation: ActivationFactory | None = None,
        pool: str = "max",
    ):
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        self.batch_norm = batch_norm
        #: the constructor's arguments, as checkpoints record them (the activations are recorded per layer)
        self.arch_kwargs = {"num_classes": int(num_classes), "batch_norm": bool(batch_norm),
                            "bn_affine": bool(bn_affine), "pool": pool}
        factory = activation or relu_factory
        Pool = nn.MaxPool2d if pool == "max" else nn.AvgPool2d

        def norm(features: int, two_d: bool) -> nn.Module:
            if not batch_norm:
                return nn.Identity()
            return (nn.BatchNorm2d if two_d else nn.BatchNorm1d)(features, affine=bn_affine)

        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.bn1 = norm(6, True)
        self.act1 = factory("act1", 6)
        self.pool1 = Pool(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.bn2 = norm(16, True)
        self.act2 = factory("act2", 16)
        self.pool2 = Pool(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.bn3 = norm(120, False)
        self.act3 = factory("act3", 120)
        self.fc2 = nn.Linear(120, 84)
        self.bn4 = norm(84, False)
        self.act4 = factory("act4", 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"LeNet5 expects images of shape (N, 1, 28, 28), got {x.shape}")
        x = self.pool1(self.act1(self.bn1(self.conv1(x))))
        x = self.pool2(self.act2(self.bn2(self.conv2(x))))
        x = self.flatten(x)
        x = self.act3(self.bn3(self.fc1(x)))
        x = self.act4(self.bn4(self.fc2(x)))
        return self.fc3(x)

    def set_activation(self, factory: ActivationFactory) -> None:
        """Replace ``act1..act4`` by ``factory(name, num_features)`` (weights are kept)."""
        features = {"act1": 6, "act2": 16, "act3": 120, "act4": 84}
        for name in self.activation_names:
            self._modules[name] = factory(name, features[name])  # same slot: repr and state-dict order kept
