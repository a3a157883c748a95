"""Experiment runners reproducing the course's two papers, each with a ``main(argv)`` CLI (``python -m tinyqnn NAME``).

Yin et al. 2019 (the STE paper; quantized activations):

* ``table1`` (``grid``): the Table 1 grid (LeNet-5, float weights, quantized activations; bits x STE), resumable
  per cell, with Markdown/CSV tables next to the paper's numbers and plots;
* ``instability``: from a clipped-ReLU minimum, continue with the identity STE at lr 1e-5 (Section 4.2);
* ``deep``: Table 1's deep rows: activation-quantized ResNet-(6n+2) over depth (and VGG-11 / ResNet-20 on CIFAR-10
  from the binary archive), bits x STE, float baseline, the instability test on each net, accuracy / loss vs depth;
* ``theory_figures`` (``theory-figures``): the two-linear-layer experiments (correlations, loss curves, spurious
  minimum).

Hou et al. 2019 (*Analysis of Quantized Models*; loss-aware quantized weights, quantized and clipped gradients,
N data-parallel workers, on ``tinyqnn.distributed``):

* ``hou_linear`` (``hou-linear``): the synthetic linear model (Section 4.1), LAB weights with FP / SQm / clipped
  gradients for d from 10 to 10^4, the paper's uniform inputs and a spiky variant (heavy-tailed gradients); norm
  blow-up and clipping bias against the bounds;
* ``hou_mlp`` (``hou-mlp``): a one-hidden-layer MLP on MNIST with d hidden units, LAQ3 weights, FP vs SQ3 gradients;
* ``hou_grid`` (``hou-grid``): weights x gradients x clipping on Fashion-MNIST with 2 workers (Table 1), per-layer
  blow-up vs layer size, the clipping-factor trade-off and weak scaling with 1, 2, 4, 8 workers;
* ``hou_common``: their shared plumbing (resumable cells, the ``--dask`` / ``--scheduler`` option, tables).

Every runner has a ``--quick`` mode (bundled subset, seconds) for CI and notebooks; the Hou runners' cells can also
run as tasks on a Dask cluster.
"""
