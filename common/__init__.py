"""Code shared by the Rasa server process and the action server."""
