"""Data shipped for the offline default: FLORES-200 devtest text (CC-BY-SA 4.0, see flores200/)."""
