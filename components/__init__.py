"""Custom NLU components, the NLG, the event broker and Rasa fixes of this project.

Rasa imports this package whenever it loads the model (the pipeline's custom
components) or ``endpoints.yml`` (the NLG and the event broker), so this is the
one place that runs in every Rasa process of the project.
"""
from components import action_validation

action_validation.install()
