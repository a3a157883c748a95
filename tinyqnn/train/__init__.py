"""Training and evaluation loops, run logs and checkpoints."""
from .checkpoint import CheckpointError, load_checkpoint, load_model, read_checkpoint_meta, save_checkpoint
from .log import RunLog, plot_history
from .loop import evaluate, fit, train_one_epoch

__all__ = [
    "train_one_epoch", "evaluate", "fit", "RunLog", "plot_history", "save_checkpoint", "load_checkpoint",
    "read_checkpoint_meta", "CheckpointError", "load_model",
]
