"""Outbound HTTP to vendor-given addresses: the network guard, its clients and the failure categories."""
