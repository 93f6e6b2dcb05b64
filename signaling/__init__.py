"""Signaling: Socket.IO namespaces, event schemas, and the queue and presence rules behind them."""
