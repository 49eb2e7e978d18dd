"""Training: the one loop, its typed config, optimisers and schedules, recipes, time budget, resume, DDP launch."""
