"""Analytics from links' own read models: the projector (event handlers that keep the
``rm_*`` tables), and the reads over them: scoreboards, leaderboards, program reports,
experiments, NPS, CSV exports, the console overview and the DLQ sizes."""
