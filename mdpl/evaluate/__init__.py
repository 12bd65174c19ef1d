"""Scores: metrics (RMSE, R, NSE, KGE, bias, Taylor statistics), benchmark tables, rankings, sensitivity."""
