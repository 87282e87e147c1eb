"""SCAN runs: one model on one split (``run``) and the side-by-side comparison the main job runs
(``compare``)."""
