"""Visual DM persistence and service layer."""
