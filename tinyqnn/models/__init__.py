"""Model definitions used by the course."""
from .lenet import LeNet5

__all__ = ["LeNet5"]
from .resnet import ResNetCIFAR, resnet20  # noqa: E402
__all__ += ["ResNetCIFAR", "resnet20"]
