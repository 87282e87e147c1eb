"""The experiment harness built on the library: GLUE (``glue``), SCAN (``scan``), translation,
parsing and any source/target files (``text``), and the report (``report``).

The library (``core``, ``models``, ``data``, ``diffprune``, ``seqmix``, ``training``) never imports
this package; the command line (``deltamix.cli``) is a thin layer over it.
"""
