"""Quality: what each model and quantization is worth (bits per byte, agreement, HumanEval)."""
