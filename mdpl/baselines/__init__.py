"""Baselines MdPL is compared with, measured on the same observations the same way.

Public API::

    empirical.predict_out_of_sample(name, datasets, fluxes=("Qle", "Qh"), seed=0)
        -> {site: EmpiricalPrediction}            # PLUMBER 1lin / 3km27, leave one site out
    lstm_obs.evaluate_obs_lstm(features, settings=None, loso=True) -> [LSTMEvaluation]
    peers.peer_rows(peers_dir, sites=None, fluxes=("Qle", "Qh"), months=None) -> DataFrame
    table.build_benchmark_table(datasets, study_dir=None, peers_dirs=(), mode="quick", ...) -> DataFrame
    lsm_runs.study_lsm_rows(study_dir, datasets, months=None) -> [row]

``mdpl benchmark`` (:mod:`mdpl.baselines.commands`) writes the table, a
ranking figure and a summary.
"""
