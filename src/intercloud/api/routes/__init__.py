"""One router per resource: thin endpoints over the SDK and the store."""
