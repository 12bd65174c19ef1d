"""The parameter generator g of (M)dPL: site inputs -> land-model parameters.

g maps a per-site input vector (summary statistics of the daily forcing plus
static site attributes) through a small MLP to a residual in logit space
around a prior (the PFT default parameters), then a sigmoid onto the unit
cube, then the affine map onto the bounds the surrogate was trained on::

    u     = sigmoid(logit(u_prior) + MLP(x))
    theta = lower + (upper - lower) * u          (linear parameters)
    theta = exp(log lower + (log upper - log lower) * u)   (log-scaled ones)

With a trust radius r > 0 the sigmoid maps onto the sub-box
``[u_prior - r, u_prior + r]`` (cut at 0 and 1) instead of the whole cube, so
calibrated parameters stay where a surrogate trained on the box is
well supported. A ``free`` mask (n_sites, P) holds the parameters it marks
False exactly at the prior (those a sensitivity screen found the targets
cannot see). The sigmoid makes leaving the bounds impossible whatever the input (NaN and
infinite inputs are zeroed first). The last layer starts at zero, so before
training g returns the prior exactly: calibration starts from the defaults.

Sharing (``mode``):

- ``'site'``: every site gets its own parameters (the network sees its inputs);
- ``'pft'``:  inputs and priors are averaged within each group before the
  network, so all sites of a group get one identical parameter set;
- ``'all'``:  one network for all sites, parameters site-specific through the
  inputs. (``'site'`` and ``'all'`` share the forward pass; they differ in how
  the calibration loop batches sites.)

A torch module only: no I/O, no land-model knowledge beyond the bounds.
"""

from __future__ import annotations

import torch
from torch import nn

MODES = ("site", "pft", "all")
_EPS = 1e-4  # keeps logit(prior) finite when a default sits on a bound


class ParameterGenerator(nn.Module):
    """Site inputs ``x`` (n_sites, n_inputs) -> parameters (n_sites, P) inside ``[lower, upper]``.

    ``lower``/``upper`` are the physical bounds (length P) the surrogate was
    trained on; ``log`` (bool, length P) marks parameters whose unit cube is
    logarithmic, as in :class:`mdpl.ils.ParameterSpace` (see :meth:`from_space`). ``input_mean``/``input_std`` normalise ``x`` (statistics of the
    training sites, stored as buffers so a checkpoint is self-contained).
    """

    def __init__(
        self,
        n_inputs: int,
        lower,
        upper,
        *,
        hidden: int = 32,
        mode: str = "site",
        log=None,
        input_mean=None,
        input_std=None,
        trust_radius: float = 0.0,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"generator mode must be one of {MODES}, got {mode!r}")
        if not 0.0 <= float(trust_radius) <= 1.0:
            raise ValueError(f"generator trust_radius must lie in [0, 1] (unit cube), got {trust_radius}")
        self.trust_radius = float(trust_radius)
        lower = torch.as_tensor(lower, dtype=torch.float64).flatten()
        upper = torch.as_tensor(upper, dtype=torch.float64).flatten()
        if lower.shape != upper.shape or not bool(torch.all(upper > lower)):
            raise ValueError("generator bounds need upper > lower elementwise and equal lengths")
        self.mode = mode
        self.n_inputs = int(n_inputs)
        self.n_params = int(lower.numel())
        log_t = torch.zeros(lower.numel(), dtype=torch.bool) if log is None else torch.as_tensor(log, dtype=torch.bool).flatten()
        if log_t.numel() != lower.numel() or bool(torch.any(log_t & (lower <= 0))):
            raise ValueError("generator 'log' flags need one per parameter and positive bounds where set")
        self.register_buffer("lower", lower.float())
        self.register_buffer("upper", upper.float())
        self.register_buffer("log", log_t)
        lo_t = torch.where(log_t, torch.log(lower.clamp_min(1e-300)), lower)
        hi_t = torch.where(log_t, torch.log(upper.clamp_min(1e-300)), upper)
        self.register_buffer("_lo_t", lo_t.float())
        self.register_buffer("_hi_t", hi_t.float())
        mean = torch.zeros(n_inputs) if input_mean is None else torch.as_tensor(input_mean).float().flatten()
        std = torch.ones(n_inputs) if input_std is None else torch.as_tensor(input_std).float().flatten()
        std = torch.where(torch.isfinite(std) & (std > 1e-12), std, torch.ones_like(std))
        self.register_buffer("input_mean", torch.nan_to_num(mean))
        self.register_buffer("input_std", std)
        self.net = nn.Sequential(
            nn.Linear(max(self.n_inputs, 1), hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, self.n_params),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    @classmethod
    def from_space(cls, space, n_inputs: int, **kw) -> ParameterGenerator:
        """A generator onto the bounds (and log flags) of a ``ParameterSpace``."""
        log = getattr(space, "log", None)
        return cls(n_inputs, space.lower, space.upper, log=log, **kw)

    # -- maps ---------------------------------------------------------------
    def to_unit(self, theta: torch.Tensor) -> torch.Tensor:
        """Physical parameters -> unit cube (with the generator's bounds and log flags)."""
        theta = torch.as_tensor(theta, dtype=self.lower.dtype, device=self.lower.device)
        t = torch.where(self.log, torch.log(theta.clamp_min(1e-30)), theta)
        return (t - self._lo_t) / (self._hi_t - self._lo_t)

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Unit cube -> physical parameters; clamps so the result is always in bounds."""
        t = self._lo_t + (self._hi_t - self._lo_t) * u
        theta = torch.where(self.log, torch.exp(torch.where(self.log, t, torch.zeros_like(t))), t)  # no inf*0 in grads
        return torch.minimum(torch.maximum(theta, self.lower), self.upper)

    def prior_logit(self, prior: torch.Tensor) -> torch.Tensor:
        """Logit of a physical prior (n, P), clipped away from the bounds."""
        u = self.to_unit(prior.to(self.lower)).clamp(_EPS, 1.0 - _EPS)
        return torch.log(u) - torch.log1p(-u)

    # -- forward ------------------------------------------------------------
    def forward_unit(self, x: torch.Tensor, prior: torch.Tensor | None = None, groups=None, free=None) -> torch.Tensor:
        """Unit-cube parameters (n_sites, P); see :meth:`forward`."""
        u = self._forward_unit(x, prior, groups)
        if free is None or prior is None:
            return u
        free = torch.as_tensor(free, dtype=torch.bool, device=u.device).expand_as(u)
        u_prior = self.to_unit(torch.as_tensor(prior).to(u).expand_as(u)).clamp(0.0, 1.0)
        return torch.where(free, u, u_prior)

    def _forward_unit(self, x: torch.Tensor, prior: torch.Tensor | None = None, groups=None) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=self.lower.dtype, device=self.lower.device)
        if x.ndim == 1:
            x = x[None, :]
        n = x.shape[0]
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        z = ((x - self.input_mean) / self.input_std).clamp(-10.0, 10.0)
        if prior is None:
            base = torch.zeros(n, self.n_params, dtype=z.dtype, device=z.device)
        else:
            prior = torch.as_tensor(prior, dtype=z.dtype, device=z.device)
            base = self.prior_logit(prior.expand(n, self.n_params))
        if self.mode == "pft":
            z, base = _group_mean(z, groups), _group_mean(base, groups)
        if self.n_inputs == 0:
            z = torch.zeros(n, 1, dtype=base.dtype, device=base.device)
        if self.trust_radius > 0 and prior is not None:
            u0 = torch.sigmoid(base)
            lo = (u0 - self.trust_radius).clamp(0.0, 1.0)
            width = (u0 + self.trust_radius).clamp(0.0, 1.0) - lo
            rel = ((u0 - lo) / width).clamp(_EPS, 1.0 - _EPS)
            return lo + width * torch.sigmoid(torch.logit(rel) + self.net(z))
        return torch.sigmoid(base + self.net(z))

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None = None, groups=None, free=None) -> torch.Tensor:
        """Physical parameters (n_sites, P), always within ``[lower, upper]``.

        ``x``: site inputs (n_sites, n_inputs). ``prior``: physical parameters
        (n_sites, P) or (P,) the output starts from (e.g. PFT defaults); None
        starts from the middle of the box. ``groups``: integer group id per
        site, required in ``'pft'`` mode. ``free``: bool (n_sites, P) or (P,),
        False where a parameter stays exactly at ``prior``.
        """
        theta = self.from_unit(self.forward_unit(x, prior, groups, free))
        if free is None or prior is None:
            return theta
        keep = torch.as_tensor(free, dtype=torch.bool, device=theta.device).expand_as(theta)
        prior = torch.as_tensor(prior).to(theta).expand_as(theta)
        return torch.where(keep, theta, torch.minimum(torch.maximum(prior, self.lower), self.upper))


def _group_mean(z: torch.Tensor, groups) -> torch.Tensor:
    """Replace each row by the mean of the rows in its group (gradients flow to all)."""
    if groups is None:
        raise ValueError("generator mode 'pft' needs a group id per site")
    g = torch.as_tensor(groups, dtype=torch.long, device=z.device).flatten()
    if g.numel() != z.shape[0]:
        raise ValueError(f"got {g.numel()} group ids for {z.shape[0]} sites")
    n_groups = int(g.max()) + 1
    sums = torch.zeros(n_groups, z.shape[1], dtype=z.dtype, device=z.device).index_add(0, g, z)
    counts = torch.zeros(n_groups, dtype=z.dtype, device=z.device).index_add(0, g, torch.ones_like(g, dtype=z.dtype))
    return (sums / counts.clamp_min(1.0)[:, None])[g]
