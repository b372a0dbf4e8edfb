"""Reinforcement-learning search: a small recurrent controller trained with REINFORCE on
inherited-weight accuracy (the NAS controller of Zoph & Le, made cheap by the supernet).

    supernet-search ckpt_path=... search=rl search.budget=1000
    supernet-search ckpt_path=... search=rl search.lr=0.02 search.entropy_weight=0.05

The controller chooses autoregressively: the depth, then each layer's width, a GRU cell carrying
the choices made so far. Closed-form budgets are *masks*: a depth or a width is offered only if
the arch can still end within max_params/max_flops with the remaining layers at the minimum width
(params and FLOPs grow with every width, so this is exact and every sample is feasible). A
measured latency over max_latency_ms is a *penalty*: the reward drops below every feasible one.

Reward: the search metric, ``sign * value``: accuracy (or any higher-is-better metric) as it
is; a lower-is-better metric (RMSE, log loss) negated and divided by the worst value of the first
batch (so about -1 .. 0, whatever the targets' units). With more objectives, minus `cost_weight`
times each cost scaled to [0, 1] (params and FLOPs by the largest arch's, latency by the first
scored arch's).
Update per batch: loss = -mean((reward - baseline) * log p(arch)) - entropy_weight * entropy,
one Adam step; the baseline is a moving average of batch rewards (`baseline_decay`). Archs
already scored are re-drawn a few times, so the budget goes to new archs.

State for resume is plain JSON: weights and Adam moments as lists of floats (float32 values are
exact in JSON), the baseline and the Python RNG that draws the samples. No pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from supernet.core.metrics import METRIC_KEYS
from supernet.core.space import Arch, SearchSpace, as_arch
from supernet.errors import UsageError
from supernet.search.base import Strategy, StrategySettings, allowed_widths, check_range, propose, strategy_defaults

# Re-draws per slot when the controller samples an arch already scored or already in the batch.
RETRIES = 8


class Controller(nn.Module):
    """Depth, then widths; the logits of each step depend on every earlier choice."""

    def __init__(self, n_depths: int, n_widths: int, depth_max: int, hidden: int = 32) -> None:
        super().__init__()
        self.start = nn.Parameter(torch.zeros(hidden))
        self.depth_head = nn.Linear(hidden, n_depths)
        self.depth_embed = nn.Embedding(n_depths, hidden)
        self.width_embed = nn.Embedding(n_widths, hidden)
        self.position = nn.Embedding(depth_max, hidden)
        self.cell = nn.GRUCell(hidden, hidden)
        self.width_head = nn.Linear(hidden, n_widths)


def _masked_log_softmax(logits: torch.Tensor, allowed: list[bool]) -> torch.Tensor:
    mask = torch.tensor(allowed, dtype=torch.bool)
    return torch.log_softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)


@dataclass(frozen=True)
class RLSettings(StrategySettings):
    """``search=rl``'s own keys (conf/search/rl.yaml), checked."""

    batch: int
    lr: float
    baseline_decay: float
    entropy_weight: float
    cost_weight: float
    hidden: int

    @classmethod
    def check(cls, cfg: Mapping, space: SearchSpace) -> None:
        check_range("batch", cfg["batch"], 1, integer=True)
        check_range("hidden", cfg["hidden"], 1, integer=True)
        if not (isinstance(cfg["lr"], (int, float)) and cfg["lr"] > 0):
            raise UsageError(f"search.lr={cfg['lr']!r} must be a positive number, e.g. 0.05")
        if not (isinstance(cfg["baseline_decay"], (int, float)) and 0 <= cfg["baseline_decay"] < 1):
            raise UsageError(f"search.baseline_decay={cfg['baseline_decay']!r} must be in [0, 1), e.g. 0.9")
        check_range("entropy_weight", cfg["entropy_weight"], 0.0)
        check_range("cost_weight", cfg["cost_weight"], 0.0)


class RLStrategy(Strategy):
    name = "rl"
    defaults = strategy_defaults("rl")
    settings_class = RLSettings
    settings: RLSettings

    def __init__(self, space, settings, constraints, objectives, seed) -> None:
        super().__init__(space, settings, constraints, objectives, seed)
        # Weights from our own seed, without disturbing the caller's global torch RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.policy = Controller(len(space.depths), len(space.widths), space.depth_max, self.settings.hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.settings.lr)
        self.baseline: float | None = None
        self.latency_scale: float | None = None
        self.metric_scale: float | None = None  # lower-is-better metrics: the first batch's worst value
        self.updates = 0
        self._pending: list[tuple[Arch, list[int]]] = []
        self._mask_cache: dict[tuple, list[bool]] = {}

    # ------------------------------------------------------------------ the policy
    def _allowed_depths(self) -> list[bool]:
        w = self.space.width_min
        return [self.constraints.static_ok(self.space, (w,) * d) for d in self.space.depths]

    def _allowed_widths(self, prefix: list[int], depth: int) -> list[bool]:
        key = (tuple(prefix), depth)
        if key not in self._mask_cache:  # a pure function of the prefix: cached, never saved
            self._mask_cache[key] = allowed_widths(self.space, self.constraints, prefix, depth)
        return self._mask_cache[key]

    def _walk(self, actions: list[int] | None = None):
        """Run the controller once. With `actions` (depth index, width indices) it scores that
        arch; without, it samples one with the strategy's RNG. Returns (actions, log p, entropy)."""
        policy, space = self.policy, self.space
        sampling = actions is None
        taken: list[int] = [] if sampling else list(actions)
        h = torch.tanh(policy.start).unsqueeze(0)
        logp = _masked_log_softmax(policy.depth_head(h)[0], self._allowed_depths())
        choice = self._draw(logp) if sampling else taken[0]
        if sampling:
            taken.append(choice)
        # Entropy only matters for the update; sampling skips it.
        total_logp, entropy = logp[choice], (0.0 if sampling else _entropy(logp))
        depth = space.depths[choice]
        x = policy.depth_embed(torch.tensor([choice]))
        prefix: list[int] = []
        for i in range(depth):
            h = policy.cell(x + policy.position(torch.tensor([i])), h)
            logp = _masked_log_softmax(policy.width_head(h)[0], self._allowed_widths(prefix, depth))
            choice = self._draw(logp) if sampling else taken[i + 1]
            if sampling:
                taken.append(choice)
            total_logp = total_logp + logp[choice]
            entropy = entropy if sampling else entropy + _entropy(logp)
            prefix.append(space.widths[choice])
            x = policy.width_embed(torch.tensor([choice]))
        return taken, total_logp, entropy

    def _draw(self, logp: torch.Tensor) -> int:
        # Inverse-CDF draw with the Python RNG: its state is already JSON in `state_dict`.
        u, acc = self.rng.random(), 0.0
        probs = logp.detach().exp().tolist()
        last = max(i for i, p in enumerate(probs) if p > 0)
        for i, p in enumerate(probs):
            acc += p
            if u < acc and p > 0:
                return i
        return last

    def _to_arch(self, actions: list[int]) -> Arch:
        return tuple(self.space.widths[a] for a in actions[1:])

    def _to_actions(self, arch: Arch) -> list[int]:
        widths = self.space.widths
        return [self.space.depths.index(len(arch))] + [widths.index(w) for w in arch]

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> list[Arch]:
        self._pending = []
        batch: set[Arch] = set()
        with torch.no_grad():
            for _ in range(self.settings.batch):
                for _ in range(RETRIES):
                    actions, _, _ = self._walk()
                    arch = self._to_arch(actions)
                    if arch not in self.seen and arch not in batch:
                        break
                else:
                    # The policy keeps drawing known archs (it has converged): explore a
                    # neighbour instead; its log-probability under the policy still drives the
                    # update, and the masks allow every arch within the budgets.
                    avoid = self.seen | batch
                    arch = propose(
                        self.space,
                        self.constraints,
                        lambda a=arch: self.space.mutate(a, self.rng),
                        avoid,
                    )
                    actions = self._to_actions(arch)
                batch.add(arch)
                self._pending.append((arch, actions))
        return [arch for arch, _ in self._pending]

    def tell(self, archs: list[Arch], records: list[dict]) -> None:
        super().tell(archs, records)
        pending = self._pending[: len(archs)]
        if [a for a, _ in pending] != [as_arch(a) for a in archs]:
            raise RuntimeError("rl: tell() must get the archs of the last ask(), in order")
        self._pending = []
        if not pending:
            return
        if METRIC_KEYS[self.score_key] < 0 and self.metric_scale is None:
            self.metric_scale = max(max(abs(float(r[self.score_key])) for r in records), 1e-12)
        rewards = [self.reward(r) for r in records]
        mean = sum(rewards) / len(rewards)
        baseline = mean if self.baseline is None else self.baseline
        logps, entropies = zip(*(self._walk(actions)[1:] for _, actions in pending), strict=True)
        advantage = torch.tensor([r - baseline for r in rewards])
        loss = -(advantage * torch.stack(logps)).mean()
        loss = loss - self.settings.entropy_weight * torch.stack(entropies).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        decay = self.settings.baseline_decay
        self.baseline = decay * baseline + (1 - decay) * mean
        self.updates += 1

    def reward(self, record: Mapping) -> float:
        reward = self._score(record)
        costs = [o for o in self.objectives if o != self.score_key]
        if "latency_ms" in costs and self.latency_scale is None:
            self.latency_scale = max(float(record["latency_ms"]), 1e-9)
        scale = {
            "params": self.space.params(self.space.largest()),
            "flops": self.space.flops(self.space.largest()),
            "latency_ms": self.latency_scale,
        }
        for o in costs:
            reward -= self.settings.cost_weight * float(record[o]) / scale[o]
        if not record.get("feasible", True):
            reward -= 1.0 + float(record.get("violation", 0.0))
        return reward

    def _score(self, record: Mapping) -> float:
        """The metric part of the reward (see the module docstring)."""
        value = float(record[self.score_key])
        if METRIC_KEYS[self.score_key] > 0:
            return value
        if self.metric_scale is None:
            self.metric_scale = max(abs(value), 1e-12)
        return -value / self.metric_scale

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        d = super().state_dict()
        d["policy"] = {k: v.tolist() for k, v in self.policy.state_dict().items()}
        d["optimizer"] = _jsonify(self.optimizer.state_dict())
        d["baseline"] = self.baseline
        d["latency_scale"] = self.latency_scale
        if self.metric_scale is not None:  # lower-is-better metrics only: accuracy's state stays as it was
            d["metric_scale"] = self.metric_scale
        d["updates"] = self.updates
        return d

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        own = self.policy.state_dict()
        self.policy.load_state_dict({k: torch.tensor(v, dtype=own[k].dtype) for k, v in d["policy"].items()})
        opt = _unjsonify(d["optimizer"])
        opt["state"] = {int(k): v for k, v in opt["state"].items()}
        self.optimizer.load_state_dict(opt)
        self.baseline = d["baseline"]
        self.latency_scale = d["latency_scale"]
        self.metric_scale = d.get("metric_scale")
        self.updates = int(d["updates"])
        self._pending = []


def _entropy(logp: torch.Tensor) -> torch.Tensor:
    p = logp.exp()
    return -(p * logp.masked_fill(p == 0, 0.0)).sum()


def _jsonify(obj):
    if isinstance(obj, torch.Tensor):
        return {"__tensor__": obj.tolist(), "dtype": str(obj.dtype).removeprefix("torch.")}
    if isinstance(obj, dict):
        return {str(k): _jsonify(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonify(v) for v in obj]
    return obj


def _unjsonify(obj):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return torch.tensor(obj["__tensor__"], dtype=getattr(torch, obj["dtype"]))
        return {k: _unjsonify(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unjsonify(v) for v in obj]
    return obj
