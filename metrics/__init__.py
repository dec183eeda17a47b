"""Sample-quality metrics (FID, KID, precision/recall, face-detection rate, memorisation), offline and in training."""
from metrics.commands import plot_command, run, training_hook  # noqa: F401
from metrics.inception import MissingExtraError  # noqa: F401
from metrics.runner import check_ready, parse_names  # noqa: F401
