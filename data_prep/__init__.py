"""Real audio for training and evaluation, built from Debian packages.

Stages, one module each, wired together by ``data_prep.build``:
``debian`` (download and extract .deb files) -> ``decode`` (any audio to 8 kHz mono 16-bit
WAV, cached, with a content hash) -> ``splits`` (which file goes to which set; duplicates
and short files removed) -> ``babble`` and ``impulses`` (synthesised sets) -> ``manifest``
(one CSV per set: file, duration, source package and path, licence).
"""
