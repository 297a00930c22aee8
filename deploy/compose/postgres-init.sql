-- Runs once, when the PostgreSQL volume is first initialised (docker-entrypoint-initdb.d).
-- One server, four databases: each service owns its own and no service reads another's.
-- The owner is the POSTGRES_USER role of docker-compose.yml; its password comes from the
-- POSTGRES_PASSWORD environment variable, never from this file.
CREATE DATABASE links;
CREATE DATABASE attribution;
CREATE DATABASE rewards;
CREATE DATABASE notifications;
