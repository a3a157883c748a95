"""The ``Function`` subclasses behind ``tinyqnn.nn.functional``: forward rule + local derivative each."""
from .conv import Conv2d
from .dropout import Dropout
from .loss import CrossEntropy, LogSoftmax, Softmax
from .normalization import BatchNorm
from .pool import AvgPool2d, MaxPool2d

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm", "Dropout", "Softmax", "LogSoftmax", "CrossEntropy"]
