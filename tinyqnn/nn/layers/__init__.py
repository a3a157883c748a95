"""Layers, one concept per file; each forward delegates its math to ``nn.functional``."""
from .activation import LeakyReLU, ReLU, Sigmoid, Tanh
from .container import ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .normalization import BatchNorm1d, BatchNorm2d
from .pooling import AvgPool2d, MaxPool2d
from .reshape import Flatten, Identity

__all__ = [
    "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "LeakyReLU", "Tanh",
    "Sigmoid", "Identity", "Flatten", "Dropout", "Sequential", "ModuleList", "CrossEntropyLoss", "MSELoss",
]
