"""The input channels, and the fixes to Rasa's server that every `rasa run` of this project needs.

Rasa imports this package in every server process, before it loads the model:
credentials.yml names the channels (channels.rest, channels.socketio, ...). So this is
where server-side fixes are installed that must not change the model (components/ is
part of the model's hash, scripts/ensure_model.py):

* channels/action_server_down.py: a visible reply within seconds when the action
  server is down or hangs, instead of silence after up to 5 minutes.
"""
from channels import action_server_down

action_server_down.install()
