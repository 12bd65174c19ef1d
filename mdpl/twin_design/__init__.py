"""The paper's 20-site design as a twin: hidden parameters that follow a known rule of the site's climate.

Twenty catalogue towers, five in each of four PFT groups (evergreen forest,
woodland, cultivation, grassland), get synthetic forcing from the weather
generator (:mod:`mdpl.data.synthetic`, with a rough station climatology per
tower, :data:`~mdpl.twin_design.sites.DESIGN_CLIMATES`). Their hidden true
parameters are the PFT defaults moved, for a few parameters, by a smooth and
documented function of two climate indices the parameter generator sees among
its inputs (:mod:`mdpl.twin_design.rule`), so there is a right answer for
g(forcing, attributes) to learn: a function of the site's climate on top of its
PFT. Every other parameter stays at its PFT default. "Observations" are the
land model run with the truth plus daily noise
(:func:`mdpl.twin.make_observations`).

One job a module:

- :mod:`~mdpl.twin_design.sites`: the towers, their climates, their forcing;
- :mod:`~mdpl.twin_design.rule`: the climate indices and the true parameters;
- :mod:`~mdpl.twin_design.experiment`: :func:`design_experiment` runs the
  study on them (:func:`mdpl.study.run_study`), then the leave-one-site-out
  transfer within each PFT group (:func:`mdpl.transfer.loso_transfer`), and
  writes the tables; :func:`load_design` reads them;
- :mod:`~mdpl.twin_design.scoring`: recovery and skill against the noise-free
  truth;
- :mod:`~mdpl.twin_design.page`: what the book shows (committed 20-site
  tables, else a quick 4-site run).

Tables (small CSV/JSON) in the study directory:

- ``design_sites.csv``: site, group, IGBP, climate indices, true parameters;
- ``design_recovery.csv``: site x source x rule parameter: true, estimate and
  default in the unit cube, whether the Sobol screen let the route move it;
- ``design_rule.csv``: per source and rule parameter over the sites where it
  was moved: R^2 and correlation of the recovered *deviation from the PFT
  default* against the true one (a source that returns the defaults scores
  R^2 <= 0), mean unit-cube error against the default's;
- ``design_skill.csv``: site x flux x source: held-out daily RMSE against
  the truth run (sources default, the study's calibrations, loso, loso_own);
- ``design_summary.json``: the headline numbers.

The names below are the package's public interface (the CLI, chapter 6 and
the tests use them).
"""

from mdpl.twin_design.experiment import DESIGN_TABLES, TWIN_SOURCES_EXTRA, DesignResult, design_experiment, load_design
from mdpl.twin_design.page import RESULTS_DIR, design_result, quick_config
from mdpl.twin_design.rule import RULE, climate_indices, rule_truth
from mdpl.twin_design.scoring import recovery_tables, skill_basis, skill_table
from mdpl.twin_design.sites import DESIGN_CLIMATES, DESIGN_SITES, design_site_codes, design_sites

__all__ = ["DESIGN_CLIMATES", "DESIGN_SITES", "DESIGN_TABLES", "RESULTS_DIR", "RULE", "TWIN_SOURCES_EXTRA",
           "DesignResult", "climate_indices", "design_experiment", "design_result", "design_site_codes",
           "design_sites", "load_design", "quick_config", "recovery_tables", "rule_truth", "skill_basis",
           "skill_table"]
