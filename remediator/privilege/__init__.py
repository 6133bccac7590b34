"""Privilege per change: PIM strategies that grant the executor the action's least-privileged role
on the one resource for the time of the write (time-bound assignment, activation, standing opt-out).
"""
