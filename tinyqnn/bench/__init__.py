"""Measuring tinyqnn: throughput against PyTorch CPU in the same run (``throughput``, the ``benchmark``
command) and the ceilings that bound it on this machine (``bounds``, ``benchmark --bounds``).

This room sits beside ``experiments``: it builds models and steps from the rooms below and measures them.
"""
