"""Model definitions used by the course, and their JSON records (what a checkpoint was trained as)."""
from .lenet import LeNet5
from .record import ARCHITECTURES, build_model, model_record, record_differences
from .resnet import ResNetCIFAR, resnet20, resnet_depth
from .vgg import VGG

__all__ = ["VGG", "LeNet5", "ResNetCIFAR", "resnet20", "resnet_depth", "ARCHITECTURES", "build_model", "model_record", "record_differences"]
