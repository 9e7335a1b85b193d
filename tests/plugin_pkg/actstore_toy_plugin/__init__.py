"""A toy actstore plug-in: one adapter and one measure, registered by entry points only."""
