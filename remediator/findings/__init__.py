"""Defender and Azure Policy payloads in every shape they arrive in -> ``Finding`` | ``Ignored``.

``model``: the Finding value and its severity; ``parse``: envelopes and payload shapes.
"""
