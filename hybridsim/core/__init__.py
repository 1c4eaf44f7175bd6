"""The neutral core that calibration and the simulator both stand on, and that imports neither.

errors (the one-line user error), atomic (staged directories and atomic files), readers (user CSV/JSON),
program (running a click command as a program), profile_model and profile_io (the profile format).
"""
