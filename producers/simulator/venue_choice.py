"""Venue choice: a weighted pick of a venue of one category, in a given commune or anywhere in the district
(popularity is lognormal; town venues draw more people)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qrtrace.domain.admin_units import Commune
from qrtrace.domain.venues import Venue
from qrtrace.producers.simulator.model import GATHERING_CATEGORIES, _is_town
from qrtrace.producers.simulator.tables import _POPULARITY_SIGMA, _TOWN_POPULARITY


@dataclass(frozen=True)
class _Picker:
    """Weighted choice of a venue of one category, in a given commune or anywhere in the district."""

    venues: np.ndarray  # venue indices, grouped by commune
    local_keys: np.ndarray  # commune position + cumulative weight within that commune (ends at c + 1)
    has_local: np.ndarray  # per commune: has at least one venue of this category
    global_cum: np.ndarray  # cumulative normalised weight over `venues` (ends at 1)

    @classmethod
    def build(cls, venues: np.ndarray, commune: np.ndarray, weight: np.ndarray, n_communes: int) -> _Picker:
        order = np.lexsort((venues, commune))
        venues, commune, weight = venues[order], commune[order], weight[order]
        totals = np.bincount(commune, weights=weight, minlength=n_communes)
        within = np.empty(len(venues))
        for c in np.unique(commune).tolist():
            sel = commune == c
            within[sel] = np.cumsum(weight[sel]) / totals[c]
            within[np.flatnonzero(sel)[-1]] = 1.0  # exact end, so c + u (u < 1) always lands inside c
        global_cum = np.cumsum(weight) / weight.sum()
        global_cum[-1] = 1.0
        return cls(venues, commune + within, totals > 0, global_cum)

    def pick(self, rng: np.random.Generator, communes: np.ndarray, local_share: float) -> np.ndarray:
        """One venue index per entry of `communes`; local with `local_share` when the commune has one."""
        n = len(communes)
        u = rng.random(n)
        local = (rng.random(n) < local_share) & self.has_local[communes]
        slot = np.searchsorted(self.global_cum, u, side="right")
        slot[local] = np.searchsorted(self.local_keys, communes[local] + u[local], side="right")
        return self.venues[slot]


def _pickers(venues: list[Venue], communes: list[Commune], seed: int) -> dict[str, _Picker]:
    """Pickers for every standing category; popularity is lognormal, town venues draw more people."""
    position = {c.commune_code: i for i, c in enumerate(communes)}
    town = {c.commune_code for c in communes if _is_town(c)}
    popularity = np.random.default_rng([seed, 1]).lognormal(0.0, _POPULARITY_SIGMA, len(venues))
    by_category: dict[str, list[int]] = {}
    for i, v in enumerate(venues):
        if v.category not in GATHERING_CATEGORIES and v.commune_code in position:
            by_category.setdefault(v.category, []).append(i)
    pickers = {}
    for category, members in by_category.items():
        idx = np.array(members)
        commune = np.array([position[venues[i].commune_code] for i in members])
        boost = np.array([_TOWN_POPULARITY if venues[i].commune_code in town else 1.0 for i in members])
        pickers[category] = _Picker.build(idx, commune, popularity[idx] * boost, len(communes))
    return pickers
