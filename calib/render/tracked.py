r"""Tracked rendering: the listening area's CTC bank, switched by head position with a crossfade.

A calibration with a listening area (:class:`calib.store.calibration.AreaBank`)
holds one L/R filter set per cell; the centre (beam) path is the same for all.
The renderer works in fixed blocks of ``block`` samples. At the start of every
block it reads the head position the tracker reported last (causal: never a
future sample), looks up its cell (:func:`calib.solve.area.cell_index`) and,
if the cell changed, runs the old and the new filter set side by side for
that block and crossfades between their outputs with a raised cosine
(``w = sin^2``, so ``w + (1 - w) = 1`` and a correlated signal keeps its
level). The new set therefore takes over completely by the end of the block
in which the head entered its cell: one block of latency at most.

Both filter sets are :class:`calib.signals.overlap_save.OverlapSave` convolvers
whose FFT length is chosen so that one block is exactly one overlap-save step
(``nfft = block + L - 1``): every push of a block returns that block's
outputs, so old and new outputs are sample-aligned. A new convolver starts
with the state an always-running one would have (the last ``L - 1`` inputs,
the carried state of overlap-save), so the new set's output is exact from its
first sample: switching introduces no transient beyond the crossfade.

The crossfade bounds the output's slope: with ``a`` and ``b`` the two sets'
outputs, ``y = (1 - w) a + w b`` and

.. math:: |\Delta y| \le \max(|\Delta a|, |\Delta b|) + \max|\Delta w| \, |b - a|,
          \qquad \max|\Delta w| = \sin(\pi / (2\,\mathrm{block})) \approx \pi / (2\,\mathrm{block}),

against ``|b - a|`` in one sample for a hard switch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.fft

from calib.errors import CalibError
from calib.render.in_memory import effective_fir
from calib.render.stream import StreamingUpmix, upmix_floor
from calib.signals.overlap_save import OverlapSave
from calib.solve.area import cell_index
from calib.store.calibration import AreaBank, Calibration

#: Default block: 1024 samples (21 ms at 48 kHz; a head at 0.5 m/s moves 1 cm).
TRACK_BLOCK = 1024
#: Cells whose filter spectra are kept (a head moving to and fro switches between few cells).
CELL_CACHE = 16


class TrackError(CalibError):
    """A head-position track that cannot be used (the CLI reports it as bad input)."""


@dataclass(frozen=True)
class HeadTrack:
    """Head positions over time: ``t_s [N]`` ascending, ``xyz_m [N, 3]``, ``yaw_deg [N]``."""

    t_s: np.ndarray
    xyz_m: np.ndarray
    yaw_deg: np.ndarray

    def at(self, t_s: float) -> tuple[np.ndarray, float]:
        """Return the latest reported position at time ``t_s`` (the first one before the track starts)."""
        i = max(int(np.searchsorted(self.t_s, t_s, side="right")) - 1, 0)
        return self.xyz_m[i], float(self.yaw_deg[i])


def read_track(path: str | Path) -> HeadTrack:
    """Read a head-position CSV: a header line, then ``time_s, x_m, y_m, z_m, yaw_deg`` per row.

    Raises
    ------
    TrackError
        Unreadable file, wrong column count, non-finite values or times not ascending;
        the message names the file and the row.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TrackError(f"{path}: cannot read the head track ({exc.__class__.__name__})") from None
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            values = [float(v) for v in fields]
        except ValueError:
            values = []
        if len(values) != 5 or not np.all(np.isfinite(values)):
            raise TrackError(f"{path}: row {n}: expected 5 finite numbers (time_s, x_m, y_m, z_m, yaw_deg), "
                             f"got {line.strip()[:80]!r}")
        rows.append(values)
    if not rows:
        raise TrackError(f"{path}: expected a header line and at least one row (time_s, x_m, y_m, z_m, yaw_deg)")
    data = np.array(rows)
    if np.any(np.diff(data[:, 0]) < 0):
        row = int(np.argmax(np.diff(data[:, 0]) < 0)) + 3
        raise TrackError(f"{path}: row {row}: time_s: expected ascending times, got {data[row - 2, 0]:g} "
                         f"after {data[row - 3, 0]:g}")
    return HeadTrack(data[:, 0], data[:, 1:4], data[:, 4])


class TrackedConvolver:
    """Upmixed inputs (L', R', C) to driver feeds through the cell of the current head position.

    Parameters
    ----------
    cal : Calibration
        With an ``area`` bank.
    block : int
        Samples per block: the cell is chosen per block, the crossfade lasts one block.
    crossfade : bool
        False switches cells hard at block boundaries (for comparison only).
    """

    def __init__(self, cal: Calibration, block: int = TRACK_BLOCK, crossfade: bool = True) -> None:
        if cal.area is None:
            raise TrackError(f"{cal.path or 'calibration'}: no listening area bank (fit a procedure with "
                             f"[listening_area] to render with a tracker)")
        if int(block) < 1:
            raise ValueError(f"block: expected >= 1 samples, got {block!r}")
        self.cal, self.bank, self.block, self.crossfade = cal, cal.area, int(block), crossfade
        centre = effective_fir(cal)[2:]  # the beam: one set for every cell
        # One overlap-save step per block (module docstring): nfft = block + L - 1, with the
        # filters zero-padded to the L that makes nfft a fast FFT length.
        self.length = centre.shape[-1]  # the effective filters' length (the output's tail)
        self.nfft = scipy.fft.next_fast_len(self.block + self.length - 1, real=True)
        self.taps = self.nfft - self.block + 1
        centre = np.pad(centre, ((0, 0), (0, 0), (0, self.taps - centre.shape[-1])))
        self._centre = OverlapSave(centre, self.nfft)
        self._cell: int | None = None
        self._conv: OverlapSave | None = None
        self._templates: OrderedDict[int, OverlapSave] = OrderedDict()  # recently used cells
        self._fade = np.sin(0.5 * np.pi * (np.arange(self.block) + 0.5) / self.block) ** 2
        self.cells: list[int] = []  # the cell used in each block (after its crossfade)

    def cell_fir(self, cell: int) -> np.ndarray:
        """Effective L/R filters ``[2, S, L]`` of one cell (virtualizer folded in, as the fixed path; zero-padded)."""
        bank: AreaBank = self.bank
        fir = np.concatenate([bank.fir[cell], self.cal.fir[2:]]).astype(np.float32)
        lr = effective_fir(replace(self.cal, fir=fir, area=None, path=None))[:2]
        return np.pad(lr, ((0, 0), (0, 0), (0, self.taps - lr.shape[-1])))

    def _primed(self, cell: int) -> OverlapSave:
        """Return a convolver for ``cell`` in the state of one that ran all along (its filter spectra cached)."""
        template = self._templates.pop(cell, None)
        if template is None:
            template = OverlapSave(self.cell_fir(cell), self.nfft)
        self._templates[cell] = template  # most recent last
        while len(self._templates) > CELL_CACHE:
            self._templates.popitem(last=False)
        # One overlap-save step per block: after each push the running convolver carries the last L - 1 inputs.
        state = np.zeros((2, self.taps - 1)) if self._conv is None else self._conv.buf
        return template.fork(state)

    def push(self, inputs: np.ndarray, xyz_m: np.ndarray, yaw_deg: float) -> np.ndarray:
        """One block ``[3, block]`` of (L', R', C) heard by a head at ``xyz_m, yaw_deg``; returns ``[S, block]``."""
        x = np.asarray(inputs, dtype=np.float64)
        if x.shape != (3, self.block):
            raise ValueError(f"inputs: expected shape [3, {self.block}], got {list(x.shape)}")
        cell = int(cell_index(self.bank.centres_m, self.bank.yaw_deg, self.bank.half_size,
                              np.asarray(xyz_m, float), np.asarray(yaw_deg, float)))
        if self._conv is None:
            self._conv, self._cell = self._primed(cell), cell
        if cell == self._cell:
            out = self._conv.push(x[:2])
        else:
            new = self._primed(cell)
            old_out, new_out = self._conv.push(x[:2]), new.push(x[:2])
            out = new_out if not self.crossfade else (1.0 - self._fade) * old_out + self._fade * new_out
            self._conv, self._cell = new, cell
        self.cells.append(cell)
        return out + self._centre.push(x[2:])


def render_tracked(
    cal: Calibration,
    stereo_blocks: Callable[[], Iterable[np.ndarray]],
    track: HeadTrack,
    *,
    block: int = TRACK_BLOCK,
    time_constant_s: float = 0.1,
    frame_s: float = 0.04,
) -> Iterator[np.ndarray]:
    """Render stereo to driver feeds with the listening-area bank steered by ``track``.

    As :func:`calib.render.stream.render_blocks` (the same upmix, streamed),
    with the convolution replaced by :class:`TrackedConvolver`. The head
    position of a block is the track's latest sample at the block's first
    output sample (time 0 = the first output sample).

    Yields
    ------
    numpy.ndarray
        [S, b] driver feeds; N + L - 1 samples in all (L the effective FIR length).
    """

    def stereo() -> Iterator[np.ndarray]:  # each block checked, as render_blocks does
        for x in map(np.asarray, stereo_blocks()):
            if x.ndim != 2 or x.shape[0] != 2:
                raise ValueError(f"stereo: expected blocks of shape [2, b], got {list(x.shape)}")
            yield x.astype(np.float64)

    options = {"time_constant_s": time_constant_s, "frame_s": frame_s}
    up = StreamingUpmix(cal.sample_rate, upmix_floor(stereo(), cal.sample_rate, **options), **options)
    conv = TrackedConvolver(cal, block)
    pending = np.zeros((3, 0))
    n_in = n_out = 0

    def drain(final: bool) -> Iterator[np.ndarray]:
        nonlocal pending, n_out
        while pending.shape[-1] >= block or (final and n_out < n_in + conv.length - 1):
            if pending.shape[-1] < block:
                pending = np.pad(pending, ((0, 0), (0, block - pending.shape[-1])))
            xyz, yaw = track.at(n_out / cal.sample_rate)
            y = conv.push(pending[:, :block], xyz, yaw)
            pending = pending[:, block:]
            keep = min(block, n_in + conv.length - 1 - n_out) if final else block
            n_out += keep
            yield y[:, :keep]

    for x in stereo():
        n_in += x.shape[-1]
        pending = np.concatenate([pending, up.push(x)], axis=-1)
        yield from drain(False)
    pending = np.concatenate([pending, up.finish()], axis=-1)
    yield from drain(True)
