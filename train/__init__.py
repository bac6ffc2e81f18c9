"""Training: networks, the VGG-16 loss network, losses, data, the training loop, checkpoints."""

from perceptual_edge.train.checkpoint import (
    Checkpoint,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from perceptual_edge.train.config import TrainConfig
from perceptual_edge.train.loop import TrainResult, train, train_sr, train_style
from perceptual_edge.train.networks import build_network, network_config, spec_for
from perceptual_edge.train.sr_net import SRNet, SRNetConfig
from perceptual_edge.train.style_net import StyleNet, StyleNetConfig
from perceptual_edge.train.vgg import VGG16Features, load_loss_network

__all__ = [
    "Checkpoint",
    "SRNet",
    "SRNetConfig",
    "StyleNet",
    "StyleNetConfig",
    "TrainConfig",
    "TrainResult",
    "VGG16Features",
    "build_network",
    "load_checkpoint",
    "load_loss_network",
    "load_model",
    "network_config",
    "save_checkpoint",
    "spec_for",
    "train",
    "train_sr",
    "train_style",
]
