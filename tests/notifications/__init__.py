"""Trade notifications (issue 16)."""
