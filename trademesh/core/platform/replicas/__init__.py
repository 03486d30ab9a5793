"""Replicas of one service: a leader lease with fencing, shares of the work, the standby's pod cost."""
