"""Exports of measurements for other tools (REW, ARTA, VituixCAD): WAV impulse responses and FRD text."""
