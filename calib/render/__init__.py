"""calib.render: play stereo through a unit's calibration.

- :mod:`calib.render.upmix`: stereo -> (L', R', C), pure numpy/scipy.
- :mod:`calib.render.in_memory`: :func:`~calib.render.in_memory.render` (stereo -> driver
  feeds), :func:`~calib.render.in_memory.render_inputs` (per-input, for verification),
  :func:`~calib.render.in_memory.effective_fir` (virtualizer folded into the FIR).
- :mod:`calib.render.stream`: the same render block by block in bounded memory
  (streaming upmix, overlap-save convolution); ``calib render`` uses it.
- :mod:`calib.render.wav_io`: WAV read and written in blocks (python-soundfile),
  bad input refused in one line, no partial output left behind.
- :mod:`calib.render.export`: raw, WAV and CamillaDSP exports with a manifest.

Nothing is imported here, so ``calib.render.upmix`` stays free of file I/O.
"""
