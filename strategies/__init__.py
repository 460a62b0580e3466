"""Candidate fixes, one module each, installed as ``mmsim.strategies``.

Every module here is written against the public hook API (:mod:`mmsim.policy`)
only, and registered through the ``mmsim.policies`` entry point, the same way a
third-party package registers its own.
"""
