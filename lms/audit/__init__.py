"""Evidence: the access log (REC-1, REC-3) and, later, the other append-only stores."""
