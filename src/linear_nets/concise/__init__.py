"""Concise implementations with `torch.nn` and `torch.optim` (d2l 3.3, 3.7)."""
