"""Analytics served by the links gateway from its own read models, fed by events.

``models`` (response shapes), ``projector`` (event handlers that keep the read-model tables),
``queries`` (reads returning the models), ``api`` (JSON routes), ``exports`` (CSV), ``nps``
(answers and promoter invitations), ``dlq`` (dead-letter topic sizes); ``stats`` (pure maths),
``pages``, ``charts``, ``i18n`` and ``console_auth`` make the HTML pages."""
