"""The FLEURS study's layer set: layers 1, 2, 4, ..., 22, 23, 24 of 24-layer encoders.

One definition for every family that uses it (SeamlessM4T v2's speech and text encoders, SONAR's
encoders) and for `--layers study` on a family that declares none (cut to the model's depth).
"""

from __future__ import annotations

#: the study's layers of a 24-layer encoder
STUDY_LAYERS = (1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 23, 24)
