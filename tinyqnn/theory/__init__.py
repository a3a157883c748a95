"""The two-linear-layer model of Yin et al. (2019): closed forms, Monte Carlo with the engine,
coarse gradient descent (Algorithm 1), the critical points of Proposition 1, and plots."""
from .descent import DescentHistory, coarse_gradient_descent, from_spurious_minimum, random_starts
from .landscape import (
    critical_points, global_minimizer, saddle_angle, saddle_point, spurious_minima_exist, spurious_minimizer,
)
from .montecarlo import MonteCarloEstimate, empirical_gradients, monte_carlo, per_sample_gradients
from .two_layer import (
    THEORY_STES, angle, clipped_relu_coarse_gradient, correlation, expected_coarse_gradient, grad_v, identity_norm_at_spurious, p_q,
    population_loss, true_gradient, xi,
)

__all__ = [
    "DescentHistory", "coarse_gradient_descent", "from_spurious_minimum", "random_starts",
    "critical_points", "global_minimizer", "saddle_angle", "saddle_point", "spurious_minima_exist",
    "spurious_minimizer", "MonteCarloEstimate", "empirical_gradients", "monte_carlo", "per_sample_gradients",
    "THEORY_STES", "angle", "clipped_relu_coarse_gradient", "correlation", "expected_coarse_gradient", "grad_v", "identity_norm_at_spurious", "p_q",
    "population_loss", "true_gradient", "xi",
]
