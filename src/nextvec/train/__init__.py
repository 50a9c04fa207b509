"""Training: `loop.train` (one readable function), `schedule.get_lr`, `checkpoint.load_model`, DDP helpers."""
