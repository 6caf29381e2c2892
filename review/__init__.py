"""The clinic review app: staff review conversations, escalations and checklist outcomes.

A Flask app served by waitress on its own port (8081 by default), reading Rasa's
SQL tracker store. One module per concern:

* ``config``     - settings from the environment and endpoints.yml;
* ``tracker``    - the tracker store: its URL (as Rasa builds it), its events, and
                   what a conversation's events mean (turns, escalations, checklist);
* ``store``      - the app's own database: users, sessions, audit log, tags, notes,
                   handled marks, and the per-conversation summary the list filters on;
* ``auth``       - passwords (argon2), server-side sessions, CSRF, login rate limits;
* ``audit``      - the audit log;
* ``redaction``  - masking phone numbers and e-mail addresses;
* ``charts``     - server-rendered SVG charts;
* ``exports``    - CSV and JSON exports;
* ``retention``  - deleting old conversations;
* ``app``        - the Flask app and its routes; ``serve`` runs it under waitress;
* ``manage``     - the command line: staff accounts, purge, refresh;
* ``seed_demo``  - a deterministic demo tracker store, through Rasa's own API.
"""
