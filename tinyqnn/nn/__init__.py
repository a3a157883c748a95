"""Neural-network building blocks: ``Module``/``Parameter``, layers, ``functional`` (F) and ``init``."""
from . import functional
from . import init
from .layers import (
    AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, CrossEntropyLoss, Dropout, Flatten, Identity, LeakyReLU, Linear,
    MaxPool2d, ModuleList, MSELoss, ReLU, Sequential, Sigmoid, Tanh,
)
from .module import IncompatibleKeys, Module, Parameter, RemovableHandle

__all__ = [
    "functional", "init", "Module", "Parameter", "IncompatibleKeys", "RemovableHandle",
    "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "LeakyReLU", "Tanh",
    "Sigmoid", "Identity", "Flatten", "Dropout", "Sequential", "ModuleList", "CrossEntropyLoss", "MSELoss",
]
