#!/bin/sh
set -eu
user="${POSTGRES_USER:-postgres}" db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" port="${PGPORT:-5432}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "${POSTGRES_PASSWORD:-postgres}" > /tmp/pwfile
  initdb -U "$user" --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  rm -f /tmp/pwfile
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -s -w -D "$PGDATA" -o "-c listen_addresses='' -p $port" start
  [ "$db" = "postgres" ] || createdb -p "$port" -U "$user" "$db"
  pg_ctl -s -w -D "$PGDATA" stop
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -p "$port"
