"""Custom actions, one module per feature. rasa-sdk imports every module here."""
