"""Stage cost: profiles (devices, cloud offers, grid), pricing options, the pure cost model,
scenarios, the verdict, and the LiteLLM price import.
"""
