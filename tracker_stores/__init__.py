"""Tracker stores for Rasa, loaded from endpoints.yml as ``type: tracker_stores.<module>.<Class>``."""
