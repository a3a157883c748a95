"""Model definitions used by the course."""
from .lenet import LeNet5

__all__ = ["LeNet5"]
