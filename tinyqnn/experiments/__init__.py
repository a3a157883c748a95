"""Experiment runners of the quantization unit (Yin et al. 2019), each with a ``main(argv)`` CLI.

* ``table1``: the Table 1 grid (LeNet-5, float weights, quantized activations; bits x STE), resumable
  per cell, with Markdown/CSV tables next to the paper's numbers and plots;
* ``instability``: from a clipped-ReLU minimum, continue with the identity STE at lr 1e-5 (Section 4.2);
* ``theory_figures``: the two-linear-layer experiments (correlations, loss curves, spurious minimum).

Every runner has a ``--quick`` mode (bundled subset, seconds) for CI and notebooks.
"""
