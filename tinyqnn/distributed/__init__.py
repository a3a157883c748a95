"""Distributed training with quantized weights and gradients (Hou, Zhang & Kwok, ICLR 2019).

Read in this order:

* ``gradient``: SQm, the unbiased m-bit stochastic gradient quantizer (``stochastic_quantize``), clipping at
  +-c sigma (``clip_gradient``), and the paper's bounds (``blowup_bound``, ``clipped_blowup_bound``,
  ``clipping_bias_F``, ``lemma3_bound``, ``worst_case_vector``).
* ``packing``: ``Message``: a layer packed into m bits per coordinate + a 32-bit scale, with exact ``nbits``.
* ``problems``: ``LinearProblem`` (the synthetic model of Section 4.1) and ``MLPProblem`` (one hidden layer).
* ``training``: ``TrainConfig``, ``worker_step``, ``Server`` (RMSProp/Adam + LAB/LAQ from
  ``tinyqnn.quant.loss_aware``), ``InProcessExecutor`` and ``train``.
* ``dask_backend``: ``DaskExecutor``: the same workers as processes on Dask distributed (``pip install
  tinyqnn[distributed]``), identical results for the same seeds.

Two workers, 2-bit clipped gradients, binary weights, on the synthetic linear model::

    from tinyqnn.distributed import LinearProblem, TrainConfig, train
    server, history = train(LinearProblem(d=100), TrainConfig(workers=2, iterations=500, weight_bits=1,
                                                              grad_bits=2, clip=3.0))
    history.average_loss()[-1], sum(history.bits_up), history.blowup()
"""
from .gradient import (
    blowup_bound, clip_gradient, clipped_blowup_bound, clipping_bias_F, lemma3_bound, resolution, spread,
    sq_variance, stochastic_quantize, stochastic_quantize_codes, worst_case_vector,
)
from .packing import Message, encode_codes, encode_float, pack_codes, unpack_codes
from .problems import LinearProblem, MLPProblem, loss_and_grads
from .training import (
    History, InProcessExecutor, Server, TrainConfig, WorkerFailure, WorkerReply, encode_gradient, train, worker_step,
)


def __getattr__(name: str):
    if name == "DaskExecutor":  # dask is an optional extra: import it only when asked for
        from .dask_backend import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module 'tinyqnn.distributed' has no attribute {name!r}")


__all__ = [
    "blowup_bound", "clip_gradient", "clipped_blowup_bound", "clipping_bias_F", "lemma3_bound", "resolution",
    "spread", "sq_variance", "stochastic_quantize", "stochastic_quantize_codes", "worst_case_vector",
    "Message", "encode_codes", "encode_float", "pack_codes", "unpack_codes",
    "LinearProblem", "MLPProblem", "loss_and_grads",
    "History", "InProcessExecutor", "Server", "TrainConfig", "WorkerFailure", "WorkerReply", "encode_gradient",
    "train", "worker_step", "DaskExecutor",
]
