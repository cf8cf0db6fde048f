"""Zariz: courier-delivery dispatch backend."""
