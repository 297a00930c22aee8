"""HTML pages: the participant scoreboard and its embed, the ops console and its sign-in;
Jinja2 templates, locale catalogs and server-drawn SVG charts. The data comes from
``insights``."""
