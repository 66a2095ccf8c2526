"""Stage run: the sweep plan, the timing loop, the runner, memory, prompts, hardware, thermals."""
