"""Perturbed parameter ensembles: space-filling designs, batched resumable land-model runs, the store."""

from mdpl.ensemble.runner import run_ensemble, training_span
from mdpl.ensemble.sampling import sample_parameters, site_seed, unit_design
from mdpl.ensemble.store import ENSEMBLE_FLUXES, EnsembleStore

__all__ = ["run_ensemble", "training_span", "sample_parameters", "unit_design", "site_seed",
           "EnsembleStore", "ENSEMBLE_FLUXES"]
