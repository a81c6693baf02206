"""Training data from interactions, LoRA fine-tuning of the ranker, offline evaluation and baselines."""
