#!/usr/bin/env bash
# Run once by the postgres image on an empty volume (docker-entrypoint-initdb.d): the services'
# role `cyclorama`, not a superuser, owning the cyclorama database. Password from its secret.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres <<SQL
CREATE ROLE cyclorama LOGIN CREATEDB PASSWORD '$(cat /run/secrets/postgres-cyclorama.password)';
CREATE DATABASE cyclorama OWNER cyclorama;
SQL
