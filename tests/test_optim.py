"""Optimizers and learning-rate schedules against hand-computed updates and their formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyqnn as tq
from tinyqnn.nn import Parameter
from tinyqnn.optim import SGD, Adam, AdamW
from tinyqnn.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR, StepLR


def scalar_param(value: float, dtype=np.float64) -> Parameter:
    return Parameter(np.array([value], dtype=dtype))


def set_grad(p: Parameter, g: float) -> None:
    p.grad = tq.Tensor(np.full(p.shape, g, dtype=p.dtype))


def half_square_step(opt, p: Parameter) -> None:
    """loss = p^2 / 2, so the gradient equals p."""
    opt.zero_grad()
    (p * p * 0.5).sum().backward()
    opt.step()


# ---------------------------------------------------------------------- SGD by hand
def test_sgd_plain_matches_hand_computation():
    p = scalar_param(1.0)
    opt = SGD([p], lr=0.1)
    # g = p: p1 = 1 - 0.1*1 = 0.9; p2 = 0.9 - 0.1*0.9 = 0.81; p3 = 0.81 - 0.081 = 0.729
    for expected in (0.9, 0.81, 0.729):
        half_square_step(opt, p)
        assert p.data[0] == pytest.approx(expected, abs=1e-12)


def test_sgd_momentum_matches_hand_computation():
    p = scalar_param(1.0)
    opt = SGD([p], lr=0.1, momentum=0.9)
    # step 1: g=1,    b = g = 1                     p = 1 - 0.1*1       = 0.9
    # step 2: g=0.9,  b = 0.9*1 + 0.9 = 1.8         p = 0.9 - 0.1*1.8   = 0.72
    # step 3: g=0.72, b = 0.9*1.8 + 0.72 = 2.34     p = 0.72 - 0.1*2.34 = 0.486
    for expected_p, expected_b in ((0.9, 1.0), (0.72, 1.8), (0.486, 2.34)):
        half_square_step(opt, p)
        assert p.data[0] == pytest.approx(expected_p, abs=1e-12)
        assert opt.state[p]["momentum_buffer"][0] == pytest.approx(expected_b, abs=1e-12)


def test_sgd_dampening_not_applied_on_first_step():
    p = scalar_param(0.0)
    opt = SGD([p], lr=1.0, momentum=0.5, dampening=0.5)
    # constant g = 2: b1 = 2 (no dampening on the first step), p1 = -2
    #                 b2 = 0.5*2 + (1-0.5)*2 = 2,  p2 = -4
    #                 g = 4: b3 = 0.5*2 + 0.5*4 = 3, p3 = -7
    for g, expected in ((2.0, -2.0), (2.0, -4.0), (4.0, -7.0)):
        set_grad(p, g)
        opt.step()
        assert p.data[0] == pytest.approx(expected, abs=1e-12)


def test_sgd_nesterov_matches_hand_computation():
    p = scalar_param(1.0)
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    # step 1: g=1,    b = 1,                        d = 1 + 0.9*1 = 1.9            p = 1 - 0.19      = 0.81
    # step 2: g=0.81, b = 0.9*1 + 0.81 = 1.71,      d = 0.81 + 0.9*1.71 = 2.349    p = 0.81 - 0.2349 = 0.5751
    for expected in (0.81, 0.5751):
        half_square_step(opt, p)
        assert p.data[0] == pytest.approx(expected, abs=1e-12)


def test_sgd_weight_decay_matches_hand_computation():
    p = scalar_param(1.0)
    opt = SGD([p], lr=0.1, weight_decay=0.1)
    # constant g = 2: g' = 2 + 0.1*1 = 2.1,     p1 = 1 - 0.21     = 0.79
    #                 g' = 2 + 0.1*0.79 = 2.079, p2 = 0.79 - 0.2079 = 0.5821
    for expected in (0.79, 0.5821):
        set_grad(p, 2.0)
        opt.step()
        assert p.data[0] == pytest.approx(expected, abs=1e-12)


def test_sgd_weight_decay_with_momentum():
    p = scalar_param(1.0)
    opt = SGD([p], lr=0.1, momentum=0.5, weight_decay=1.0)
    # g = 0 always: step 1 g' = 0 + 1*1 = 1, b = 1,                p = 1 - 0.1    = 0.9
    #               step 2 g' = 0.9,        b = 0.5*1 + 0.9 = 1.4,  p = 0.9 - 0.14 = 0.76
    for expected in (0.9, 0.76):
        set_grad(p, 0.0)
        opt.step()
        assert p.data[0] == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------- Adam by hand
def test_adam_matches_hand_computation():
    p = scalar_param(1.0)
    opt = Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    # step 1, g = 0.5: m = 0.1*0.5 = 0.05, v = 0.001*0.25 = 0.00025
    #   m_hat = 0.05/(1-0.9) = 0.5, v_hat = 0.00025/(1-0.999) = 0.25
    #   p1 = 1 - 0.1 * 0.5 / (sqrt(0.25) + 1e-8)
    set_grad(p, 0.5)
    opt.step()
    p1 = 1 - 0.1 * 0.5 / (math.sqrt(0.25) + 1e-8)
    assert p.data[0] == pytest.approx(p1, abs=1e-12)
    # step 2, g = -1: m = 0.9*0.05 + 0.1*(-1) = -0.055, v = 0.999*0.00025 + 0.001*1 = 0.00124975
    #   m_hat = -0.055/(1-0.81), v_hat = 0.00124975/(1-0.998001)
    set_grad(p, -1.0)
    opt.step()
    m_hat, v_hat = -0.055 / (1 - 0.81), 0.00124975 / (1 - 0.998001)
    p2 = p1 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert p.data[0] == pytest.approx(p2, abs=1e-12)
    assert opt.state[p]["step"] == 2
    assert opt.state[p]["exp_avg"][0] == pytest.approx(-0.055, abs=1e-15)
    assert opt.state[p]["exp_avg_sq"][0] == pytest.approx(0.00124975, abs=1e-15)


def test_adam_weight_decay_is_l2_in_the_gradient():
    p = scalar_param(2.0)
    opt = Adam([p], lr=0.01, betas=(0.5, 0.75), eps=0.1, weight_decay=0.5)
    # g = 1, g' = 1 + 0.5*2 = 2: m = 0.5*2 = 1, v = 0.25*4 = 1; m_hat = 1/0.5 = 2, v_hat = 1/0.25 = 4
    #   p1 = 2 - 0.01 * 2 / (2 + 0.1)
    set_grad(p, 1.0)
    opt.step()
    assert p.data[0] == pytest.approx(2 - 0.01 * 2 / 2.1, abs=1e-12)


def test_adamw_decouples_weight_decay():
    p = scalar_param(2.0)
    opt = AdamW([p], lr=0.01, betas=(0.5, 0.75), eps=0.1, weight_decay=0.5)
    # p <- 2 * (1 - 0.01*0.5) = 1.99; g = 1: m_hat = 1, v_hat = 1; p1 = 1.99 - 0.01 * 1 / (1 + 0.1)
    set_grad(p, 1.0)
    opt.step()
    assert p.data[0] == pytest.approx(1.99 - 0.01 / 1.1, abs=1e-12)


def test_adam_amsgrad_uses_running_max_of_v():
    p = scalar_param(0.0)
    opt = Adam([p], lr=1.0, betas=(0.0, 0.5), eps=0.0, amsgrad=True)
    # beta1 = 0: m = g.  step 1 g = 2: v = 0.5*4 = 2, vmax = 2, m_hat = 2, v_hat = 2/0.5 = 4 -> p = -2/2 = -1
    # step 2 g = 0.5: v = 0.5*2 + 0.5*0.25 = 1.125, vmax = 2; v_hat = 2/0.75 -> p = -1 - 0.5/sqrt(2/0.75)
    set_grad(p, 2.0)
    opt.step()
    assert p.data[0] == pytest.approx(-1.0, abs=1e-12)
    set_grad(p, 0.5)
    opt.step()
    assert p.data[0] == pytest.approx(-1 - 0.5 / math.sqrt(2 / 0.75), abs=1e-12)


# ---------------------------------------------------------------------- common behaviour
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make", [
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True),
        lambda ps: Adam(ps, lr=0.1, weight_decay=1e-2, amsgrad=True),
        lambda ps: AdamW(ps, lr=0.1),
    ],
)
def test_updates_keep_dtype_in_place_and_skip_missing_grads(make, dtype):
    a = Parameter(np.ones((2, 3), dtype=dtype))
    b = Parameter(np.ones(4, dtype=dtype))
    opt = make([a, b])
    array_before = a.data
    set_grad(a, 0.5)
    opt.step()
    opt.step()
    assert a.data is array_before and a.dtype == dtype
    assert not np.allclose(a.data, 1.0)
    np.testing.assert_array_equal(b.data, np.ones(4, dtype=dtype))  # grad None: untouched, no state
    assert b not in opt.state
    assert all(v.dtype == dtype for v in opt.state[a].values() if isinstance(v, np.ndarray))


def test_param_groups_use_their_own_hyperparameters():
    a, b = scalar_param(1.0), scalar_param(1.0)
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.0)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.0 and opt.param_groups[1]["nesterov"] is False
    set_grad(a, 1.0)
    set_grad(b, 1.0)
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5)


def test_zero_grad():
    p = scalar_param(1.0)
    opt = SGD([p], lr=0.1)
    set_grad(p, 3.0)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, [0.0])
    opt.zero_grad()
    assert p.grad is None


def test_step_closure_returns_loss():
    p = scalar_param(3.0)
    opt = SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p * 0.5).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(4.5)
    assert p.data[0] == pytest.approx(3.0 - 0.3)


@pytest.mark.parametrize(
    "build, message", [
        (lambda p: SGD([p], lr=-0.1), "lr"),
        (lambda p: SGD([p], lr=0.1, momentum=-0.5), "momentum"),
        (lambda p: SGD([p], lr=0.1, nesterov=True), "Nesterov"),
        (lambda p: SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
        (lambda p: SGD([p], lr=0.1, weight_decay=-1.0), "weight_decay"),
        (lambda p: Adam([p], lr=-1e-3), "lr"),
        (lambda p: Adam([p], betas=(1.0, 0.999)), "betas"),
        (lambda p: Adam([p], betas=(0.9, -0.1)), "betas"),
        (lambda p: Adam([p], eps=-1.0), "eps"),
        (lambda p: SGD([{"params": [p], "lr": -1.0}], lr=0.1), "lr"),
        (lambda p: SGD([], lr=0.1), "empty"),
        (lambda p: Adam(iter([])), "empty"),
        (lambda p: SGD([p, p], lr=0.1), "more than once"),
        (lambda p: SGD([np.zeros(3)], lr=0.1), "Tensors"),
    ],
)
def test_invalid_arguments_raise_clear_errors(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build(scalar_param(1.0))


# ---------------------------------------------------------------------- state dict round trips
def _run(opt, params, steps, rng):
    for _ in range(steps):
        for p in params:
            p.grad = tq.Tensor(rng.standard_normal(p.shape).astype(p.dtype))
        opt.step()


@pytest.mark.parametrize(
    "make", [
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda ps: Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.01}], lr=0.05, amsgrad=True),
        lambda ps: AdamW(ps, lr=0.05, betas=(0.8, 0.9)),
    ],
)
def test_optimizer_state_dict_round_trip_through_npz(make, tmp_path):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal((3, 2)).astype(np.float32)), Parameter(np.zeros(2, dtype=np.float32))]
    opt = make(params)
    _run(opt, params, 3, np.random.default_rng(1))

    state = opt.state_dict()
    assert all(isinstance(v, (np.ndarray, int, float, bool)) for v in state.values())
    np.savez(tmp_path / "opt.npz", **state)
    loaded = dict(np.load(tmp_path / "opt.npz", allow_pickle=False))

    clones = [Parameter(p.data.copy()) for p in params]
    opt2 = make(clones)
    for group in opt2.param_groups:  # scramble hyper-parameters: loading must restore them
        group["lr"] = 123.0
    opt2.load_state_dict(loaded)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    assert [type(v) for v in opt2.param_groups[0].values()] == [type(v) for v in opt.param_groups[0].values()]

    _run(opt, params, 3, np.random.default_rng(2))
    _run(opt2, clones, 3, np.random.default_rng(2))
    for p, q in zip(params, clones):
        np.testing.assert_array_equal(p.data, q.data)


def test_optimizer_state_dict_is_a_copy():
    p = scalar_param(1.0)
    opt = SGD([p], lr=0.1, momentum=0.9)
    set_grad(p, 1.0)
    opt.step()
    state = opt.state_dict()
    state["state.0.momentum_buffer"][...] = 99.0
    assert opt.state[p]["momentum_buffer"][0] == 1.0


def test_optimizer_load_rejects_other_layouts():
    a, b = scalar_param(1.0), scalar_param(1.0)
    opt = SGD([a, b], lr=0.1, momentum=0.9)
    set_grad(a, 1.0)
    opt.step()
    with pytest.raises(ValueError, match="2 parameters"):
        SGD([a], lr=0.1).load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="groups"):
        SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(opt.state_dict())
    bad = opt.state_dict()
    bad["state.0.momentum_buffer"] = np.zeros(5)
    with pytest.raises(ValueError, match=r"state\.0\.momentum_buffer.*\(1,\).*\(5,\)"):
        SGD([a, b], lr=0.1, momentum=0.9).load_state_dict(bad)


# ---------------------------------------------------------------------- schedulers
def _lrs(scheduler, epochs):
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(epochs):
        scheduler.optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    assert scheduler.optimizer.param_groups[0]["lr"] == lrs[-1]
    return lrs


def test_step_lr_sequence():
    opt = SGD([scalar_param(1.0)], lr=1.0)
    lrs = _lrs(StepLR(opt, step_size=3, gamma=0.5), 9)
    expected = [1.0] * 3 + [0.5] * 3 + [0.25] * 3 + [0.125]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)


def test_multistep_lr_sequence():
    opt = SGD([scalar_param(1.0)], lr=0.1)
    lrs = _lrs(MultiStepLR(opt, milestones=[2, 5], gamma=0.1), 7)
    expected = [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


@given(t_max=st.integers(1, 20), eta_min=st.floats(0.0, 0.05), base=st.floats(0.06, 1.0))
@settings(max_examples=30, deadline=None)
def test_cosine_lr_sequence(t_max, eta_min, base):
    opt = SGD([scalar_param(1.0)], lr=base)
    lrs = _lrs(CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min), t_max)
    expected = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2 for t in range(t_max + 1)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=1e-15)
    assert lrs[0] == pytest.approx(base) and lrs[-1] == pytest.approx(eta_min)


def test_scheduler_scales_every_group_from_its_own_initial_lr():
    opt = SGD([{"params": [scalar_param(1.0)], "lr": 1.0}, {"params": [scalar_param(1.0)], "lr": 0.1}], lr=0.5)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    assert sched.get_last_lr() == pytest.approx([0.5, 0.05])
    assert [g["initial_lr"] for g in opt.param_groups] == [1.0, 0.1]


@pytest.mark.parametrize(
    "make", [
        lambda o: StepLR(o, step_size=2, gamma=0.3),
        lambda o: MultiStepLR(o, milestones=[1, 4], gamma=0.2),
        lambda o: CosineAnnealingLR(o, T_max=6, eta_min=0.01),
    ],
)
def test_scheduler_state_dict_round_trip(make, tmp_path):
    opt = SGD([scalar_param(1.0)], lr=0.5)
    sched = make(opt)
    for _ in range(3):
        sched.step()
    np.savez(tmp_path / "s.npz", **sched.state_dict())
    loaded = dict(np.load(tmp_path / "s.npz", allow_pickle=False))

    opt2 = SGD([scalar_param(1.0)], lr=0.5)
    sched2 = make(opt2)
    sched2.load_state_dict(loaded)
    assert sched2.last_epoch == 3 and sched2.get_last_lr() == sched.get_last_lr()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for _ in range(4):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr(), rel=1e-15)


@pytest.mark.parametrize(
    "build", [
        lambda o: StepLR(o, step_size=0),
        lambda o: MultiStepLR(o, milestones=[3, 2]),
        lambda o: CosineAnnealingLR(o, T_max=0),
        lambda o: StepLR(object(), step_size=1),
    ],
)
def test_scheduler_bad_arguments(build):
    with pytest.raises((ValueError, TypeError)):
        build(SGD([scalar_param(1.0)], lr=0.1))


# ---------------------------------------------------------------------- optional: against torch.optim
def _torch_trajectory(torch, make_torch, x0, grads):
    t = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = make_torch([t])
    for g in grads:
        t.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return t.detach().numpy()


@pytest.mark.parametrize(
    "ours, theirs", [
        (lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
         lambda T, ps: T.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
        (lambda ps: SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
         lambda T, ps: T.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
        (lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
         lambda T, ps: T.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
        (lambda ps: Adam(ps, lr=0.01, amsgrad=True),
         lambda T, ps: T.optim.Adam(ps, lr=0.01, amsgrad=True)),
        (lambda ps: AdamW(ps, lr=0.01, weight_decay=0.2),
         lambda T, ps: T.optim.AdamW(ps, lr=0.01, weight_decay=0.2)),
    ],
)
def test_trajectories_match_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(6)]
    p = Parameter(x0.copy())
    opt = ours([p])
    for g in grads:
        p.grad = tq.Tensor(g)
        opt.step()
    expected = _torch_trajectory(torch, lambda ps: theirs(torch, ps), x0, grads)
    np.testing.assert_allclose(p.data, expected, rtol=1e-12, atol=1e-14)


def test_schedulers_match_torch():
    torch = pytest.importorskip("torch")
    cases = [
        (lambda o: StepLR(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        (lambda o: MultiStepLR(o, [2, 5], 0.1), lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.1)),
        (lambda o: CosineAnnealingLR(o, 8, 0.001), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 8, 0.001)),
    ]
    for ours, theirs in cases:
        mine = ours(SGD([scalar_param(1.0)], lr=0.1))
        ref = theirs(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1))
        for _ in range(10):
            assert mine.get_last_lr()[0] == pytest.approx(ref.get_last_lr()[0], rel=1e-9, abs=1e-15)
            mine.optimizer.step()
            ref.optimizer.step()
            mine.step()
            ref.step()


def test_model_optimizer_scheduler_checkpoint_in_one_npz(tmp_path):
    """The recipe for checkpoints: prefix the three flat dicts, save one .npz, resume exactly."""
    from tinyqnn import nn

    def build():
        tq.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        return model, opt, StepLR(opt, step_size=2, gamma=0.5)

    def epoch(model, opt, sched, seed):
        rng = np.random.default_rng(seed)
        for _ in range(2):
            x = tq.Tensor(rng.standard_normal((5, 3)).astype(np.float32))
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()
        sched.step()

    model, opt, sched = build()
    for e in range(3):
        epoch(model, opt, sched, e)
    blob = {f"model.{k}": v for k, v in model.state_dict().items()}
    blob |= {f"optim.{k}": v for k, v in opt.state_dict().items()}
    blob |= {f"sched.{k}": v for k, v in sched.state_dict().items()}
    np.savez(tmp_path / "ckpt.npz", **blob)

    model2, opt2, sched2 = build()
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as f:
        def part(prefix):
            return {k[len(prefix):]: f[k] for k in f.files if k.startswith(prefix)}
        model2.load_state_dict(part("model."))
        opt2.load_state_dict(part("optim."))
        sched2.load_state_dict(part("sched."))
    assert sched2.get_last_lr() == sched.get_last_lr() == [0.1 * 0.5]
    for e in range(3, 6):
        epoch(model, opt, sched, e)
        epoch(model2, opt2, sched2, e)
    for (name, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_add_param_group_later():
    a, b = scalar_param(1.0), scalar_param(1.0)
    opt = Adam([a], lr=0.1)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999) and opt.param_groups[1]["lr"] == 0.01
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [a]})
