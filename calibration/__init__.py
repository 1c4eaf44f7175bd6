"""Measuring what an LLM request costs on the hardware at hand, and writing it down as a profile.

meters/ read energy counters (one module per energy source); runner drives torch + transformers at exact
token counts; protocol repeats settings the way the paper did; fitting and profile_writer turn trials into
a profile the simulator reads.
"""
