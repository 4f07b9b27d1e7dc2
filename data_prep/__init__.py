"""Real audio for training and evaluation, built from Debian packages.

Steps, one module each: ``debian`` (download and extract .deb files) -> ``decode`` (any
audio to 8 kHz mono 16-bit WAV, cached, with a content hash) -> ``splits`` (which file goes
to which set; duplicates and short files removed) -> ``babble`` and ``impulses`` (synthesised
sets; ``impulses`` is also the room simulator of ``evaluation.simulator``) -> ``manifest`` (one
CSV per set: file, duration, source package and path, licence).

The build: ``build`` (the runner, ``build_dataset``, and its config) runs four stages,
``build_music``, ``build_renders`` (scores from music21's corpus rendered with FluidSynth by
``renders``), ``build_noise`` and ``build_impulses``, which share ``build_state`` (the build's
state, and the bookkeeping that lets a rerun reuse a finished stage).
"""
