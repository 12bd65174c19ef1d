"""Torch modules of MdPL: surrogates of the land model (single- and multi-task) and the parameter generator.

Modules only, no I/O: training loops live in :mod:`mdpl.calibrate`.
"""
