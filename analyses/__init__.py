"""Analyses over aligned sets read from the store: similarity grids, retrieval, t-SNE, neurons."""
