"""Contracts: specs of commitments and reserved capacity, and the long-horizon planner."""
